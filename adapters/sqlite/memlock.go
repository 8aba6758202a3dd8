package sqlite

// An in-memory store's connections share one memdb database, which has no
// WAL: a write transaction holds a lock that refuses every new reader until
// it commits, and COMMIT waits until no reader is left. SQLite resolves
// those conflicts by sleeping and retrying (the busy handler, 1 to 100 ms a
// try), and a writer that starts its next group commit the moment it has
// finished wins nearly every race: under 128 appending goroutines reads
// waited up to the busy timeout and failed with ErrBusy (issue 9 item 2).
//
// So an in-memory store orders its own connections itself, with one
// sync.RWMutex (drv.memMu): the writer holds it exclusively for each
// transaction, and every read holds it shared from before it takes a
// reader connection until its rows are closed. The database's own locks
// then never conflict (SQLite could not run a read and a write at once
// anyway), and the RWMutex is fair where the busy handler is not: once the
// writer waits, new reads queue behind it, and every read queued during a
// transaction runs before the next one. A read waits at most for the
// transaction in progress and the reads ahead of it.
//
// The lock is taken before the connection, not by the connection (a
// driver wrapper was tried first): with the lock inside the pool's 4
// connections, only 4 reads got in between two transactions, since the
// writer took the lock again before the next reads had a connection; with
// 64 watchers read p99 was 597 ms (BenchmarkReadUnderAppendLoad on a busy
// machine, where the unfixed store measured 203 ms shortly before).
//
// A goroutine holding the read lock must not take it again (a waiting
// writer would deadlock it): each read takes it once around one page, one
// Info or one snapshot, never across a yield to the caller.

// readLock takes the store's read lock if it has one (in-memory stores)
// and returns its release.
func (d *drv) readLock() (unlock func()) {
	if d.memMu == nil {
		return noUnlock
	}
	d.memMu.RLock()
	return d.memMu.RUnlock
}

func noUnlock() {}
