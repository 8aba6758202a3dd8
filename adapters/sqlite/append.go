package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// A request is one append or snapshot save waiting for the writer.
type request struct {
	ctx   context.Context
	state atomic.Int32 // reqQueued, reqTaken or reqWithdrawn

	streamID string
	expected eventstore.ExpectedVersion
	events   []eventstore.Event
	snapshot *eventstore.Snapshot

	// run, when not nil, makes the request a transaction of its own
	// (writeTx) instead of an append or a snapshot save.
	run func(ctx context.Context, tx *sql.Tx) error
	// raw, when not nil (with run set too, so that the writer takes it
	// alone), runs on the writer's connection outside any transaction
	// (Purge's checkpoint).
	raw func(ctx context.Context, c *sql.Conn) error

	done chan result // buffered: the writer never blocks on it
}

const (
	reqQueued int32 = iota
	reqTaken
	reqWithdrawn
)

type result struct {
	res eventstore.AppendResult
	err error
	// panicked holds what a writeTx's function panicked with, for the
	// caller to panic with again.
	panicked *panicValue
}

// Append queues b for the writer and waits for its outcome; see
// [driver.Driver.Append].
//
// Appends from many goroutines are queued to the store's single writer,
// which commits the requests it finds waiting together in one transaction
// (group commit), each isolated by a savepoint, so one request's conflict
// does not affect the others and each caller gets its own result.
//
// If ctx ends while the request is still queued, the request is withdrawn,
// nothing is written and Append returns the context error. Once the writer
// has taken the request it runs to completion (its transaction is not tied
// to any caller's context) and Append returns its outcome, even if ctx has
// ended meanwhile; this keeps the answer truthful: an error from Append
// always means nothing was written, except for a failed COMMIT, whose
// outcome SQLite reports as an error for every request of the group
// (eventstore.ErrUnknownOutcome when it may have reached the file).
//
// Errors: [eventstore.ConflictError], [eventstore.IdempotencyError],
// [eventstore.ErrClosed], a context error, [ErrBusy] when another process
// held the write lock beyond the busy timeout, [eventstore.ErrUnknownOutcome],
// or [ErrDatabase] wrapping any other SQLite error. Times are kept to the
// microsecond, [eventstore.TimePrecision].
func (d *drv) Append(ctx context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	r := &request{ctx: ctx, streamID: b.StreamID, expected: b.Expected, events: b.Events, done: make(chan result, 1)}
	res := d.submit(ctx, r)
	return res.res, res.err
}

// submit queues r for the writer and waits for its result.
func (d *drv) submit(ctx context.Context, r *request) result {
	select {
	case d.queue <- r:
	case <-ctx.Done():
		return result{err: ctx.Err()}
	case <-d.closing:
		return result{err: eventstore.ErrClosed}
	}
	select {
	case res := <-r.done:
		return res
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			return result{err: ctx.Err()}
		}
	case <-d.writerDone:
		// The writer has stopped; a request it never took is withdrawn.
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			return result{err: eventstore.ErrClosed}
		}
	}
	// The writer took the request: its result is coming.
	return <-r.done
}

// writer holds the writer goroutine's connection state: prepared
// statements and reusable buffers. Only the writer goroutine uses it
// (and Open/Close, when the goroutine is not running).
type writer struct {
	conn *sql.Conn

	begin, commit, rollback         *sql.Stmt
	savepoint, release, rollbackTo  *sql.Stmt
	streamVersion, findIDs          *sql.Stmt
	upsertStream, updateHead, saveS *sql.Stmt
	inserts                         map[int]*sql.Stmt

	args []any
	ids  []string
	md   bytes.Buffer

	walPath     string // "" for memory or a database not in WAL mode
	busyTimeout int64  // ms, restored after shrinkWAL
}

// insertChunk is the most rows one INSERT statement carries (7 parameters
// each, far below SQLite's 32766). Batches are cut into chunks of this
// size, then of smallChunk, then one statement of the exact remainder, so
// at most smallChunk+1 statements are ever prepared.
const (
	insertChunk = 256
	smallChunk  = 64
	insertCols  = 7
)

func (w *writer) prepare(ctx context.Context, c *sql.Conn) error {
	w.conn = c
	w.inserts = make(map[int]*sql.Stmt)
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT req"},
		{&w.release, "RELEASE req"},
		{&w.rollbackTo, "ROLLBACK TO req"},
		{&w.streamVersion, "SELECT version, deleted FROM streams WHERE stream_id = ?"},
		{&w.findIDs, "SELECT event_id, stream_id, version FROM events WHERE event_id IN (SELECT value FROM json_each(?))"},
		{&w.upsertStream, `INSERT INTO streams (stream_id, version, last_time) VALUES (?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_time = excluded.last_time`},
		{&w.updateHead, "UPDATE head SET position = ?, count = count + ?, last_time = ? WHERE id = 1"},
		{&w.saveS, `INSERT INTO snapshots (stream_id, name, version, schema, data, time) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version, schema = excluded.schema,
				data = excluded.data, time = excluded.time
			WHERE excluded.version >= snapshots.version`},
	} {
		st, err := c.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.dst = st
	}
	return nil
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.savepoint, w.release, w.rollbackTo,
		w.streamVersion, w.findIDs, w.upsertStream, w.updateHead, w.saveS} {
		if st != nil {
			_ = st.Close()
		}
	}
	for _, st := range w.inserts {
		_ = st.Close()
	}
	w.inserts = nil
}

// beginTx starts the group's write transaction. Should an earlier
// transaction have been left open (a ROLLBACK that failed), it is rolled
// back first rather than wedging the writer for good.
func (w *writer) beginTx(ctx context.Context) error {
	_, err := w.begin.ExecContext(ctx)
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		_, _ = w.rollback.ExecContext(ctx)
		_, err = w.begin.ExecContext(ctx)
	}
	return err
}

func (w *writer) insertStmt(ctx context.Context, rows int) (*sql.Stmt, error) {
	if st, ok := w.inserts[rows]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO events (stream_id, version, event_id, type, data, metadata, time) VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	st, err := w.conn.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	w.inserts[rows] = st
	return st, nil
}

// writeLoop is the writer goroutine: it takes the requests waiting in the
// queue, up to maxGroup, and commits them in one transaction. A writeTx
// request runs in a transaction of its own, after the group taken before
// it: a function that fails must not roll back appends.
func (d *drv) writeLoop() {
	defer close(d.writerDone)
	group := make([]*request, 0, d.opts.maxGroup)
	var walCheck <-chan time.Time
	if d.w.walPath != "" {
		t := time.NewTicker(walCheckInterval)
		defer t.Stop()
		walCheck = t.C
	}
	for {
		var own *request // a writeTx request that ended the group
		select {
		case r := <-d.queue:
			if r.run != nil {
				d.runTx(r)
				continue
			}
			group = append(group[:0], r)
		case <-walCheck:
			d.w.shrinkWAL()
			continue
		case <-d.closing:
			d.drain()
			return
		}
	fill:
		for len(group) < d.opts.maxGroup {
			select {
			case r := <-d.queue:
				if r.run != nil {
					own = r
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		d.commitGroup(group)
		clear(group)
		if own != nil {
			d.runTx(own)
		}
	}
}

// drain answers every request still queued at Close with ErrClosed.
func (d *drv) drain() {
	for {
		select {
		case r := <-d.queue:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.done <- result{err: eventstore.ErrClosed}
			}
		default:
			return
		}
	}
}

// groupItem is one taken request and its outcome within the transaction.
type groupItem struct {
	r    *request
	res  eventstore.AppendResult
	err  error
	last int64 // time of its last event
}

func (d *drv) commitGroup(group []*request) {
	items := make([]groupItem, 0, len(group))
	for _, r := range group {
		if r.ctx.Err() != nil {
			if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
				r.done <- result{err: r.ctx.Err()}
			}
			continue
		}
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			items = append(items, groupItem{r: r})
		}
	}
	if len(items) == 0 {
		return
	}
	if d.memMu != nil {
		// The readers of an in-memory store wait for this transaction
		// instead of failing on its lock (issue 9 item 2; memlock.go).
		d.memMu.Lock()
		defer d.memMu.Unlock()
	}
	// The transaction belongs to the writer, not to any caller: a caller
	// whose context ends must not roll back the others' work.
	ctx := context.Background()
	w := &d.w
	finish := func(err error) {
		for i := range items {
			if items[i].err == nil {
				items[i].err = err
			}
			items[i].r.done <- result{res: items[i].res, err: items[i].err}
		}
	}
	if err := w.beginTx(ctx); err != nil {
		finish(translateError(err, nil))
		return
	}
	// A request alone in its transaction needs no savepoint: the
	// transaction's own rollback isolates it.
	isolate := len(items) > 1
	var (
		wrote, appended int
		headPos         uint64
		headCount       int
		headTime        int64
		snaps           int
		broken          error
	)
	for i := range items {
		it := &items[i]
		if broken != nil {
			it.err = broken
			continue
		}
		if isolate {
			if _, err := w.savepoint.ExecContext(ctx); err != nil {
				broken = translateError(err, nil)
				it.err = broken
				continue
			}
		}
		if it.r.snapshot != nil {
			it.err = w.saveSnapshot(ctx, it.r.snapshot)
		} else {
			it.res, it.last, it.err = w.apply(ctx, it.r)
		}
		if it.err != nil {
			// Undo this request only; the others in the group stand.
			if isolate {
				if _, err := w.rollbackTo.ExecContext(ctx); err != nil {
					broken = translateError(err, nil)
				} else if _, err := w.release.ExecContext(ctx); err != nil {
					broken = translateError(err, nil)
				}
			}
			continue
		}
		if isolate {
			if _, err := w.release.ExecContext(ctx); err != nil {
				broken = translateError(err, nil)
				it.err = broken
				continue
			}
		}
		if it.r.snapshot != nil {
			snaps++
			wrote++
			continue
		}
		if it.res.Appended > 0 {
			wrote++
			appended++
			headPos = it.res.Position
			headCount += it.res.Appended
			headTime = it.last
		}
	}
	if broken == nil && headCount > 0 {
		if _, err := w.updateHead.ExecContext(ctx, int64(headPos), headCount, headTime); err != nil {
			broken = translateError(err, nil)
		}
	}
	if broken != nil || wrote == 0 {
		// A failed ROLLBACK (SQLite may have rolled back already, after
		// an I/O error) is dealt with by the next BEGIN; the requests
		// keep their own errors.
		_, _ = w.rollback.ExecContext(ctx)
		if broken != nil {
			for i := range items {
				items[i].err = broken
			}
		}
		finish(broken)
		return
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		// Issue 9 item 1's audit: once COMMIT returns nil nothing can
		// fail any more (the driver reports only sqlite3_step's result),
		// and no path re-runs a request. COMMIT's own error is where the
		// outcome can be unknown. SQLITE_BUSY or LOCKED leave the
		// transaction open and the ROLLBACK below undoes it: nothing was
		// written, and ErrBusy says so. But an I/O error (SQLITE_IOERR,
		// SQLITE_FULL) while writing or syncing the WAL rolls the
		// transaction back in this process after its commit frame may
		// have reached the WAL file; should the process crash before the
		// next commit overwrites those frames, recovery replays them.
		// Those get eventstore.ErrUnknownOutcome. Requests that had
		// failed on their own (rolled back to their savepoint) were not
		// written either way and keep their errors; a pure retry of
		// stored IDs wrote nothing and keeps its answer.
		err = translateError(err, nil)
		_, _ = w.rollback.ExecContext(ctx)
		if !errors.Is(err, ErrBusy) {
			unknown := fmt.Errorf("sqlite: append: %w: COMMIT failed: %w", eventstore.ErrUnknownOutcome, err)
			for i := range items {
				if items[i].err == nil && items[i].res.Appended > 0 {
					items[i].err = unknown
				}
			}
			finish(nil)
			return
		}
		for i := range items {
			items[i].err = err
		}
		finish(err)
		return
	}
	d.statsMu.Lock()
	d.stats.Commits++
	d.stats.Appends += uint64(appended)
	d.stats.Events += uint64(headCount)
	d.stats.Snapshots += uint64(snaps)
	d.statsMu.Unlock()
	if headCount > 0 && d.notices != nil {
		// Once per group, before any caller has its answer and (in
		// memory) while the readers' lock is held: woken watchers read
		// together once the transaction is over (driver.Config.OwnNotices).
		ids := make([]string, 0, appended)
		for i := range items {
			if items[i].err == nil && items[i].res.Appended > 0 {
				ids = append(ids, items[i].r.streamID)
			}
		}
		d.notices.Appended(ids...)
	}
	finish(nil)
}

// apply runs one append inside the writer's transaction: idempotency
// check, expected-version check, multi-row insert, stream row upsert.
func (w *writer) apply(ctx context.Context, r *request) (eventstore.AppendResult, int64, error) {
	var cur uint64
	var v, deleted int64
	switch err := w.streamVersion.QueryRowContext(ctx, r.streamID).Scan(&v, &deleted); err {
	case nil:
		cur = uint64(v)
	case sql.ErrNoRows:
	default:
		return eventstore.AppendResult{}, 0, translateError(err, nil)
	}
	if deleted != 0 {
		// Before the IDs: the deleted events' IDs went with them, and a
		// retry of a command on a deleted stream must not pass for new.
		return eventstore.AppendResult{}, 0, &eventstore.StreamDeletedError{StreamID: r.streamID, Version: cur}
	}

	dups, err := w.duplicates(ctx, r)
	if err != nil {
		return eventstore.AppendResult{}, 0, err
	}
	if len(dups) == len(r.events) {
		// Every event is already stored: a retry, whatever was expected.
		return eventstore.AppendResult{Version: cur, Duplicates: dups}, 0, nil
	}
	if !r.expected.Matches(cur) {
		return eventstore.AppendResult{}, 0, &eventstore.ConflictError{StreamID: r.streamID, Expected: r.expected, Actual: cur}
	}

	// Microseconds, as PostgreSQL keeps: one precision for every adapter
	// (issue 9 item 9).
	now := time.Now().Truncate(eventstore.TimePrecision).UnixNano()
	version := cur
	var lastTime int64
	var lastPos int64
	op := &appendOp{streamID: r.streamID, expected: r.expected}
	var skip []bool
	if len(dups) > 0 {
		skip = make([]bool, len(r.events))
		for _, d := range dups {
			skip[d.Index] = true
		}
	}
	pending := make([]int, 0, len(r.events)-len(dups))
	for i := range r.events {
		if skip == nil || !skip[i] {
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 {
		n := len(pending)
		switch {
		case n >= insertChunk:
			n = insertChunk
		case n >= smallChunk:
			n = smallChunk
		}
		st, err := w.insertStmt(ctx, n)
		if err != nil {
			return eventstore.AppendResult{}, 0, translateError(err, op)
		}
		args := w.args[:0]
		for _, i := range pending[:n] {
			ev := &r.events[i]
			version++
			t := now
			if !ev.Time.IsZero() {
				t = ev.Time.Truncate(eventstore.TimePrecision).UnixNano()
			}
			lastTime = t
			var id, md any
			if ev.ID != "" {
				id = ev.ID
			}
			if ev.Metadata != nil {
				w.md.Reset()
				if err := encodeMetadata(&w.md, ev.Metadata); err != nil {
					return eventstore.AppendResult{}, 0, fmt.Errorf("%w: encoding metadata: %w", ErrDatabase, err)
				}
				md = w.md.String()
			}
			var data any
			if ev.Data != nil {
				data = ev.Data
			}
			args = append(args, r.streamID, int64(version), id, ev.Type, data, md, t)
		}
		w.args = args[:0]
		res, err := st.ExecContext(ctx, args...)
		clear(args)
		if err != nil {
			return eventstore.AppendResult{}, 0, translateError(err, op)
		}
		if lastPos, err = res.LastInsertId(); err != nil {
			return eventstore.AppendResult{}, 0, translateError(err, op)
		}
		pending = pending[n:]
	}
	if _, err := w.upsertStream.ExecContext(ctx, r.streamID, int64(version), lastTime); err != nil {
		return eventstore.AppendResult{}, 0, translateError(err, op)
	}
	return eventstore.AppendResult{
		Version:    version,
		Position:   uint64(lastPos),
		Appended:   int(version - cur),
		Duplicates: dups,
	}, lastTime, nil
}

// duplicates looks up the batch's event IDs in one query. IDs stored in
// this stream are reported as duplicates (in batch order); an ID stored in
// another stream fails the append with an IdempotencyError.
func (w *writer) duplicates(ctx context.Context, r *request) ([]eventstore.Duplicate, error) {
	ids := w.ids[:0]
	for i := range r.events {
		if r.events[i].ID != "" {
			ids = append(ids, r.events[i].ID)
		}
	}
	w.ids = ids[:0]
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	clear(ids)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding IDs: %w", ErrDatabase, err)
	}
	rows, err := w.findIDs.QueryContext(ctx, string(list))
	if err != nil {
		return nil, translateError(err, nil)
	}
	defer rows.Close()
	var found map[string]uint64
	for rows.Next() {
		var id, stream string
		var v int64
		if err := rows.Scan(&id, &stream, &v); err != nil {
			return nil, translateError(err, nil)
		}
		if stream != r.streamID {
			return nil, &eventstore.IdempotencyError{EventID: id, StreamID: r.streamID, StoredIn: stream}
		}
		if found == nil {
			found = make(map[string]uint64)
		}
		found[id] = uint64(v)
	}
	if err := rows.Err(); err != nil {
		return nil, translateError(err, nil)
	}
	if len(found) == 0 {
		return nil, nil
	}
	dups := make([]eventstore.Duplicate, 0, len(found))
	for i := range r.events {
		if v, ok := found[r.events[i].ID]; ok && r.events[i].ID != "" {
			dups = append(dups, eventstore.Duplicate{Index: i, ID: r.events[i].ID, Version: v})
		}
	}
	return dups, nil
}
