package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore/driver"
)

// Listen starts the store's single change detector for appends made by
// other processes (or other Stores on the same file): PRAGMA data_version
// changes when another connection commits to the file. One poll every
// poll interval ([WithPollInterval]) serves every watcher. When it
// changes, the poller reads which streams got events after the last
// position it had seen and reports them to n.
//
// An in-memory store has no poller: no other process can reach its
// database, and the front wakes watchers for the store's own appends.
// Only the first call starts the poller (the front makes one), and none
// after Close.
func (d *drv) Listen(n driver.Notices) {
	d.listenMu.Lock()
	defer d.listenMu.Unlock()
	if d.notices != nil || d.closed.Load() {
		return
	}
	// Before the writer's first commit: the front calls Listen in New,
	// before Open returns and so before any request reaches the writer.
	d.notices = n
	if d.poller == nil {
		return
	}
	d.poller.n = n
	d.pollerDone = make(chan struct{})
	go d.poll(d.pollerDone)
}

func (d *drv) poll(done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	p := d.poller
	t := time.NewTicker(d.opts.pollInterval)
	defer t.Stop()
	for {
		var v int64
		if err := p.version.QueryRowContext(ctx).Scan(&v); err == nil {
			if p.last >= 0 && v != p.last {
				p.changed(ctx)
			}
			p.last = v
		}
		select {
		case <-d.closing:
			return
		case <-t.C:
		}
	}
}

// pollBatch bounds the events the poller reads after a change; past it,
// every watcher is woken instead.
const pollBatch = 4096

// poller is the state of the poll goroutine. Its statements are prepared
// at Open (so that a failure shows there) on pollDB, whose single
// connection is the poller's own.
type poller struct {
	n                    driver.Notices
	version, head, since *sql.Stmt
	seen                 int64 // highest position already notified; -1 if unknown
	last                 int64 // data_version at the last poll; -1 if unknown
	ids                  []string

	// afterWakeAll, when set (by tests only), runs right after the
	// poller woke every watcher and before it records what it has seen:
	// the window of issue 9 item 6.
	afterWakeAll atomic.Pointer[func()]
}

// newPoller prepares the poller's statements on db and takes its starting
// point. It does so at Open, before a watch can start: a watch's first
// read covers whatever was committed before.
func newPoller(ctx context.Context, db *sql.DB) (*poller, error) {
	p := &poller{}
	for _, st := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&p.version, "PRAGMA data_version"},
		{&p.head, "SELECT position FROM head WHERE id = 1"},
		{&p.since, "SELECT position, stream_id FROM events WHERE position > ? ORDER BY position LIMIT ?"},
	} {
		var err error
		if *st.dst, err = db.PrepareContext(ctx, st.sql); err != nil {
			return nil, errors.Join(err, p.close())
		}
	}
	if err := p.version.QueryRowContext(ctx).Scan(&p.last); err != nil {
		return nil, errors.Join(err, p.close())
	}
	if err := p.head.QueryRowContext(ctx).Scan(&p.seen); err != nil {
		return nil, errors.Join(err, p.close())
	}
	return p, nil
}

func (p *poller) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{p.version, p.head, p.since} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// changed reports the streams that got events after p.seen. The data
// version also changes with this Store's own commits (whose watchers the
// front woke already) and with snapshot saves; waking a watcher needlessly
// costs it one read, never a missed event.
func (p *poller) changed(ctx context.Context) {
	if p.seen < 0 {
		var head int64
		if err := p.head.QueryRowContext(ctx).Scan(&head); err == nil {
			p.seen = head
		}
		p.wakeAll()
		return
	}
	rows, err := p.since.QueryContext(ctx, p.seen, pollBatch)
	if err != nil {
		p.n.Changed()
		return
	}
	defer rows.Close()
	p.ids = p.ids[:0]
	n := 0
	seen := p.seen
	for rows.Next() {
		var pos int64
		var id string
		if err := rows.Scan(&pos, &id); err != nil {
			p.n.Changed()
			return
		}
		n++
		seen = pos
		if len(p.ids) == 0 || p.ids[len(p.ids)-1] != id {
			p.ids = append(p.ids, id)
		}
	}
	if rows.Err() != nil {
		p.n.Changed()
		return
	}
	switch n {
	case 0:
		return
	case pollBatch:
		// Many events at once: skip to the head and wake everyone. The
		// head is read before the wake (issue 9 item 6): whatever commits
		// after the read gets a higher position, so the next poll finds
		// it. Read after the wake, a commit landing in between was marked
		// seen although the watchers may have read before it, and nobody
		// was woken for it.
		var head int64
		if err := p.head.QueryRowContext(ctx).Scan(&head); err == nil {
			seen = max(seen, head)
		}
		p.wakeAll()
	default:
		p.n.Appended(p.ids...)
	}
	p.seen = seen
}

// wakeAll wakes every watcher, for a change whose streams the poller does
// not list.
func (p *poller) wakeAll() {
	p.n.Changed()
	if f := p.afterWakeAll.Load(); f != nil {
		(*f)()
	}
}
