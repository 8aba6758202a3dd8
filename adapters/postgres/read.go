package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/eventstore"
)

// Read's pages: the first is small, so that a loop that breaks early
// (reading the last event backwards, say) fetches little, and they grow
// fourfold up to maxReadPage rows. Every page also ends at
// eventstore.PageBytes (see readQuery).
const (
	firstReadPage = 64
	maxReadPage   = 4096
)

// Read yields the events of streamID in version order, or of
// eventstore.AllStreams in global position order, as opts says. Rows are
// fetched in pages by key (version or position: keyset pagination, each
// page a query of its own, LIMIT a page size) and the connection goes
// back to the pool before a page's events are yielded: the loop body
// holds no connection, so it may append to the store or read again
// whatever the pool's size. Keys are gapless and allocated in commit
// order (see doc.go), so the pages join up without a snapshot; events
// committed during the read after its last key are read too. Filters run
// in SQL.
//
// Errors (yielded once): *eventstore.ValidationError,
// eventstore.ErrClosed, a ctx error, or a wrapped database error.
func (s *Store) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := s.check(ctx); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if err := eventstore.ValidateReadOptions(streamID, opts.Filter); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if opts.Limit < 0 {
		return eventstore.ErrorSeq(&eventstore.ValidationError{Field: "limit", Index: -1, Reason: "negative"})
	}
	if opts.From > math.MaxInt64 && !opts.Backwards {
		// From is a bound (issue 9 item 9): past every key a bigint
		// column can hold, forwards there is nothing to read. (Clamped
		// to MaxInt64 it would return an event stored at MaxInt64.)
		return func(func(eventstore.Recorded, error) bool) {}
	}
	all := streamID == eventstore.AllStreams
	filtered := !opts.Filter.IsZero()
	return func(yield func(eventstore.Recorded, error) bool) {
		// From the first large page on (of an unfiltered read), the next page is fetched (by a
		// goroutine of its own, which holds a connection only while it
		// fetches) while the loop body runs on the current one, so that
		// the server and the consumer work at the same time, as they do
		// on one cursor. A loop that breaks waits for that fetch to end
		// rather than cancel it: canceling a query costs the pool its
		// connection.
		var next chan fetched
		defer func() {
			if next != nil {
				<-next
			}
		}()
		q := opts
		remaining := opts.Limit
		size := firstReadPage
		// Whether the server cuts pages at eventstore.PageBytes (see
		// readQuery): its running sum costs it about 0.3 µs a row, too
		// much for small events (read_stream's rate fell by a third or
		// more with it on every page). So the first page is cut, the
		// events' sizes being unknown, and later ones only once a page's
		// largest event, times the next page's rows, reaches the budget;
		// from then on for good. A page read uncut that meets larger
		// events than that is still cut at the budget by fetch, which
		// then discards the rest of its LIMIT: that costs transfer, never
		// memory, and happens at most once per read (such a page makes
		// the cut for good).
		cut, cutForGood := true, false
		var page []eventstore.Recorded
		var err error
		for {
			n := size
			size = min(size*4, maxReadPage)
			if opts.Limit > 0 && remaining < n {
				n = remaining
			}
			if next != nil {
				f := <-next
				next = nil
				page, err = f.page, f.err
			} else {
				q.Limit = n
				sql, args := s.readQuery(streamID, q, 0, cut)
				page, err = s.fetch(ctx, sql, args, nil)
			}
			if err != nil {
				yield(eventstore.Recorded{}, err)
				return
			}
			// A page ends at n rows or at eventstore.PageBytes (see
			// readQuery); one cut short by bytes is followed by the next
			// at once.
			more := eventstore.PageFull(page, n)
			if !cutForGood {
				cutForGood = largestEvent(page)*size >= eventstore.PageBytes
				cut = cutForGood
			}
			if opts.Limit > 0 {
				if remaining -= len(page); remaining == 0 {
					more = false
				}
			}
			if more {
				last := page[len(page)-1].Version
				if all {
					last = page[len(page)-1].Position
				}
				switch {
				case opts.Backwards && last <= 1, !opts.Backwards && last >= math.MaxInt64:
					more = false
				case opts.Backwards:
					q.From = last - 1
				default:
					q.From = last + 1
				}
			}
			// Not with a filter: a selective one makes the next page a
			// scan of everything after the last match, which a loop
			// that breaks would have to wait for.
			if more && n >= maxReadPage/4 && !filtered {
				q.Limit = size
				if opts.Limit > 0 && remaining < size {
					q.Limit = remaining
				}
				sql, args := s.readQuery(streamID, q, 0, cut)
				ch := make(chan fetched, 1)
				next = ch
				go func() {
					p, err := s.fetch(ctx, sql, args, nil)
					ch <- fetched{p, err}
				}()
			}
			// Each page is a slice of its own, dropped once yielded: it
			// holds at most PageBytes plus one event (issue 9 item 3).
			for _, r := range page {
				if !yield(r, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

// largestEvent returns the size of the largest event in page.
func largestEvent(page []eventstore.Recorded) int {
	n := 0
	for i := range page {
		n = max(n, eventstore.EventSize(page[i].Event))
	}
	return n
}

// fetched is a page fetched ahead.
type fetched struct {
	page []eventstore.Recorded
	err  error
}

// fetch runs a query built by readQuery and appends its events to page,
// up to eventstore.PageBytes: a page the server did not cut (see Read)
// ends there too, and the rows after are read and discarded as they come,
// never held. The connection is released before it returns.
func (s *Store) fetch(ctx context.Context, sql string, args []any, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	if err := s.check(ctx); err != nil {
		return page, err
	}
	ctx, done := s.callCtx(ctx)
	defer done()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return page, s.readErr(ctx, err)
	}
	defer rows.Close()
	var sc scanner
	for size := 0; size < eventstore.PageBytes && rows.Next(); {
		r, err := sc.scan(rows)
		if err != nil {
			return page, s.readErr(ctx, err)
		}
		size += eventstore.EventSize(r.Event)
		page = append(page, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, s.readErr(ctx, err)
	}
	return page, nil
}

// callCtx returns a context for one database call: ctx, also ended when
// the store closes, so that Close, which waits for every connection to
// come back to the pool it closes, is not held up by a call waiting for a
// lock another session holds (issue 9 item 4). The call then gets
// ErrClosed (see callErr).
func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.bgCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// readErr translates a read's error. A call cut short by Close (its
// connection closed or its connection attempt canceled by the pool) gets
// ErrClosed, whatever the driver said, unless its own ctx ended.
func (s *Store) readErr(ctx context.Context, err error) error {
	return s.callErr(ctx, err, "read")
}

func (s *Store) callErr(ctx context.Context, err error, op string) error {
	if s.closed.Load() && (ctx.Err() == nil || s.bgCtx.Err() != nil) {
		return eventstore.ErrClosed
	}
	return translateError(err, opErr(op))
}

// eventSizeSQL is eventstore.EventSize in SQL: the bytes of data plus
// those of the metadata's keys and values (jsonb_each_text yields them
// unescaped, as Go decodes them). octet_length reads a TOASTed value's
// size from its pointer, without fetching the value.
// Kept in int4, so that the running sum is an int8 sum, not a numeric one.
const eventSizeSQL = "octet_length(data) + CASE WHEN metadata IS NULL THEN 0 ELSE " +
	"coalesce((SELECT sum(octet_length(k) + octet_length(v)) FROM jsonb_each_text(metadata) AS m(k, v))::int4, 0) END"

// readQuery builds the SELECT for a read, up to version or position upTo
// when it is not 0 (forwards only). The text depends only on the shape of
// opts (which filters are present), so pgx's statement cache keeps a few
// prepared statements, not one per call.
//
// With cut (and a limit), the page is also bounded by bytes (issue 9 item
// 3): it ends after the first row that brings the sizes of its events to
// eventstore.PageBytes. The server does the cutting, with a running sum,
// because the client cannot do it cheaply: it would have to read and
// discard the rest of the LIMIT, which the server sends whatever the
// client keeps (up to 4,096 rows of 1 MiB), and canceling a query costs
// the pool its connection. The running sum's frame starts at the page's
// first row and ends at the current one, which PostgreSQL computes
// incrementally (a frame ending at 1 PRECEDING, which would spare the
// subtraction, took twice as long); LIMIT still caps the scan. It costs
// the server about 0.3 µs a row (1.8 against 0.65 ms for a page of 4,096
// small events, EXPLAIN ANALYZE, best of 30), which is why Read does
// without it where it can.
func (s *Store) readQuery(streamID string, opts eventstore.ReadOptions, upTo uint64, cut bool) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 8)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	key := "position"
	if streamID != eventstore.AllStreams {
		key = "version"
	}
	order := key
	if opts.Backwards {
		order += " DESC"
	}
	budget := cut && opts.Limit > 0
	if budget {
		b.WriteString("SELECT ")
		b.WriteString(s.q.cols)
		b.WriteString(" FROM (SELECT ")
		b.WriteString(s.q.cols)
		b.WriteString(", sum(")
		b.WriteString(eventSizeSQL)
		b.WriteString(") OVER (ORDER BY ")
		b.WriteString(order)
		b.WriteString(" ROWS UNBOUNDED PRECEDING) - (")
		b.WriteString(eventSizeSQL)
		b.WriteString(") AS bytes_before")
	} else {
		b.WriteString("SELECT ")
		b.WriteString(s.q.cols)
	}
	b.WriteString(" FROM ")
	b.WriteString(s.schema)
	b.WriteString(".events WHERE ")
	if streamID != eventstore.AllStreams {
		b.WriteString("stream_id = ")
		b.WriteString(arg(streamID))
		b.WriteString(" AND ")
	}
	from := int64(min(opts.From, math.MaxInt64))
	b.WriteString(key)
	switch {
	case !opts.Backwards:
		b.WriteString(" >= ")
		b.WriteString(arg(from))
	case opts.From == 0:
		b.WriteString(" > 0") // from the end
	default:
		b.WriteString(" <= ")
		b.WriteString(arg(from))
	}
	if upTo > 0 && !opts.Backwards {
		fmt.Fprintf(&b, " AND %s <= %s", key, arg(int64(min(upTo, math.MaxInt64))))
	}
	f := opts.Filter
	if f.StreamPrefix != "" {
		b.WriteString(" AND starts_with(stream_id, ")
		b.WriteString(arg(f.StreamPrefix))
		b.WriteString(")")
	}
	if len(f.Types) > 0 {
		b.WriteString(" AND type = ANY(")
		b.WriteString(arg(f.Types))
		b.WriteString(")")
	}
	for _, m := range f.Metadata {
		switch m.Op {
		case eventstore.MetadataEq:
			fmt.Fprintf(&b, " AND metadata->>(%s::text) = %s", arg(m.Key), arg(m.Values[0]))
		case eventstore.MetadataIn:
			fmt.Fprintf(&b, " AND metadata->>(%s::text) = ANY(%s)", arg(m.Key), arg(m.Values))
		case eventstore.MetadataPrefix:
			// starts_with, unlike LIKE, needs no escaping of % and _.
			fmt.Fprintf(&b, " AND starts_with(metadata->>(%s::text), %s)", arg(m.Key), arg(m.Values[0]))
		}
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(order)
	if opts.Limit > 0 {
		b.WriteString(" LIMIT ")
		b.WriteString(arg(int64(opts.Limit)))
	}
	if budget {
		b.WriteString(") AS page WHERE bytes_before < ")
		b.WriteString(arg(int64(eventstore.PageBytes)))
		b.WriteString(" ORDER BY ")
		b.WriteString(order)
	}
	return b.String(), args
}

// scanner turns rows of s.q.cols into Recorded values.
type scanner struct {
	position, version int64
	stream, typ       string
	eventID           pgtype.Text
	data, meta        []byte
	at                time.Time
}

func (sc *scanner) scan(rows pgx.Rows) (eventstore.Recorded, error) {
	sc.data, sc.meta = nil, nil
	if err := rows.Scan(&sc.position, &sc.stream, &sc.version, &sc.eventID, &sc.typ, &sc.data, &sc.meta, &sc.at); err != nil {
		return eventstore.Recorded{}, err
	}
	r := eventstore.Recorded{
		Event: eventstore.Event{
			ID:   sc.eventID.String,
			Type: sc.typ,
			Data: sc.data,
			Time: sc.at.UTC(),
		},
		StreamID: sc.stream,
		Version:  uint64(sc.version),
		Position: uint64(sc.position),
	}
	if len(r.Data) == 0 {
		r.Data = nil
	}
	if len(sc.meta) > 0 {
		// Into a variable of its own: &r.Metadata would move every
		// row's Recorded to the heap, metadata or not (one 120-byte
		// allocation per row: 690 ms of scan's 3.25 s in a cmd/esbench
		// read_stream profile).
		var md map[string]string
		if err := json.Unmarshal(sc.meta, &md); err != nil {
			return eventstore.Recorded{}, fmt.Errorf("decode metadata of event at position %d: %w", sc.position, err)
		}
		r.Metadata = md
	}
	return r, nil
}

// Watch yields the events of streamID (or eventstore.AllStreams) after
// opts.From, first those stored, then live ones, in order, each once,
// until ctx ends (the iteration just stops) or the store is closed (it
// yields eventstore.ErrClosed). It is eventstore.Follow over pages read
// with Read: a watcher holds no connection while it waits, and all the
// store's watchers wait on its Hub (a Notifier for AllStreams and one per
// watched stream), woken by its own appends, by LISTEN and by the poll.
//
// On AllStreams, positions are allocated in commit order (see doc.go), so
// resuming with eventstore.After(lastPosition) never skips an event.
func (s *Store) Watch(ctx context.Context, streamID string, opts eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := s.check(ctx); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if err := eventstore.ValidateReadOptions(streamID, opts.Filter); err != nil {
		return eventstore.ErrorSeq(err)
	}
	all := streamID == eventstore.AllStreams
	key := func(r eventstore.Recorded) uint64 {
		if all {
			return r.Position
		}
		return r.Version
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		after, err := opts.From.Resolve(func() (uint64, error) { return s.present(ctx, streamID) })
		if err != nil {
			if ctx.Err() == nil {
				yield(eventstore.Recorded{}, err)
			}
			return
		}
		// read returns up to limit events from key lo, up to hi when it is
		// not 0.
		read := func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error) {
			// Always cut by the server: a watch's pages alternate between
			// catch-up and live ones of any size, so a guess from the last
			// page would often be wrong (see Read), and live pages are
			// short anyway.
			sql, args := s.readQuery(streamID, eventstore.ReadOptions{From: lo, Limit: limit, Filter: opts.Filter}, hi, true)
			return s.fetch(ctx, sql, args, nil)
		}
		page := func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
			if after >= math.MaxInt64 {
				return nil, nil
			}
			return read(ctx, after+1, 0, limit)
		}
		if !opts.Filter.IsZero() {
			// Keys are allocated in commit order (see doc.go).
			page = eventstore.HeadBounded(func(ctx context.Context) (uint64, error) {
				return s.present(ctx, streamID)
			}, read)
		}
		n, release := s.notifiers.Watch(streamID)
		defer release()
		for r, err := range eventstore.Follow(ctx, n, after, s.retryLostConnection(page), key) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// present returns the current version of a stream, or the head position.
func (s *Store) present(ctx context.Context, streamID string) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	ctx, done := s.callCtx(ctx)
	defer done()
	var v int64
	var err error
	if streamID == eventstore.AllStreams {
		err = s.pool.QueryRow(ctx, s.q.head).Scan(&v)
	} else {
		err = s.pool.QueryRow(ctx, s.q.streamVersion, streamID).Scan(&v)
	}
	if err != nil {
		return 0, s.readErr(ctx, err)
	}
	return uint64(v), nil
}

// Info describes streamID, or the whole store for eventstore.AllStreams
// (Version is then the head position). A stream without events has
// Version 0 and is not an error. Count equals Version: versions and
// positions are gapless (see doc.go).
func (s *Store) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.StreamInfo{}, err
	}
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return eventstore.StreamInfo{}, err
	}
	ctx, done := s.callCtx(ctx)
	defer done()
	info := eventstore.StreamInfo{StreamID: streamID}
	var (
		v   int64
		at  time.Time
		err error
	)
	if streamID == eventstore.AllStreams {
		err = s.pool.QueryRow(ctx, s.q.allHead).Scan(&v, &at)
	} else {
		err = s.pool.QueryRow(ctx, s.q.streamHead, streamID).Scan(&v, &at)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return info, nil
	case err != nil:
		return eventstore.StreamInfo{}, s.readErr(ctx, err)
	}
	info.Version, info.Count, info.LastTime = uint64(v), uint64(v), at.UTC()
	return info, nil
}

// SaveSnapshot stores snap as the latest snapshot of (StreamID, Name)
// unless one with a higher version is stored there already (then it does
// nothing and returns nil). A snapshot past the stream's head is refused
// with a *eventstore.ValidationError, checked by the saving statement
// itself. An empty Name means eventstore.DefaultSnapshotName; Time is set
// by the database.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := eventstore.ValidateSnapshot(snap, 0); err != nil {
		return err
	}
	ctx, done := s.callCtx(ctx)
	defer done()
	if snap.Name == "" {
		snap.Name = eventstore.DefaultSnapshotName
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	var head int64
	err := s.pool.QueryRow(ctx, s.q.saveSnap, snap.StreamID, snap.Name, int64(snap.Version), snap.Schema, data,
		snap.StreamID == eventstore.AllStreams).Scan(&head)
	if err != nil {
		return s.callErr(ctx, err, "save snapshot")
	}
	return eventstore.ValidateSnapshotHead(snap, uint64(head))
}

// LoadSnapshot returns the latest snapshot of (streamID, name), or an
// error matching eventstore.ErrNotFound. An empty name means
// eventstore.DefaultSnapshotName.
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Snapshot{}, err
	}
	if err := eventstore.ValidateSnapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0); err != nil {
		return eventstore.Snapshot{}, err
	}
	ctx, done := s.callCtx(ctx)
	defer done()
	if name == "" {
		name = eventstore.DefaultSnapshotName
	}
	snap := eventstore.Snapshot{StreamID: streamID, Name: name}
	var v int64
	err := s.pool.QueryRow(ctx, s.q.loadSnap, streamID, name).Scan(&v, &snap.Schema, &snap.Data, &snap.Time)
	if err != nil {
		return eventstore.Snapshot{}, s.callErr(ctx, err, fmt.Sprintf("load snapshot %q of stream %q", name, streamID))
	}
	snap.Version = uint64(v)
	snap.Time = snap.Time.UTC()
	if len(snap.Data) == 0 {
		snap.Data = nil
	}
	return snap, nil
}

// Watches retry a page whose connection was lost (a terminated backend, a
// server restart, a network cut) this many times, waiting
// watchRetryDelay, doubling up to watchRetryMaxDelay, between attempts:
// about 12 s in all before the watch ends with the error. The page is read
// again from the same key, so the retry can neither skip nor repeat.
const (
	watchRetries       = 10
	watchRetryDelay    = 50 * time.Millisecond
	watchRetryMaxDelay = 2 * time.Second
)

// retryLostConnection wraps a watch's page function so that a lost
// connection does not end the watch: the pool replaces the connection and
// the page is read again.
func (s *Store) retryLostConnection(page eventstore.PageFunc) eventstore.PageFunc {
	return func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
		delay := watchRetryDelay
		for attempt := 0; ; attempt++ {
			events, err := page(ctx, after, limit)
			if err == nil || attempt == watchRetries || !connectionLost(err) {
				return events, err
			}
			s.watchRetries.Add(1)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			delay = min(2*delay, watchRetryMaxDelay)
		}
	}
}
