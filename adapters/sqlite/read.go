package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// readPageSize is the number of rows a Read fetches per query. Reads are
// paged by key (version or position) rather than held open as one cursor:
// a reader's lock is then held only while a page is fetched, never while
// the caller's loop body runs. That matters because the loop body may
// append to the same store (a projection writing back), because the
// in-memory database has no WAL (a reader open across a commit would make
// the writer wait), and because a long-open read keeps a WAL file from
// being checkpointed. Memory stays bounded by one page: readPageSize rows
// or [eventstore.PageBytes], whichever comes first.
const readPageSize = 1024

// firstPageSize is the size of a Read's first page; pages then grow
// fourfold up to readPageSize.
const firstPageSize = 64

// maxCachedStmts bounds the reader statement cache; filter shapes beyond
// it are run unprepared.
const maxCachedStmts = 128

// readQuery is a read's SQL, built once per Read or Watch; pages differ
// only in their bounds and limit.
type readQuery struct {
	sql      string
	all      bool
	streamID string
	filter   []any // arguments of the filter conditions
}

func buildQuery(streamID string, backwards bool, f eventstore.Filter) (*readQuery, error) {
	q := &readQuery{all: streamID == eventstore.AllStreams, streamID: streamID}
	var b strings.Builder
	if q.all {
		b.WriteString("SELECT position, stream_id, version, coalesce(event_id, ''), type, data, metadata, time FROM events WHERE position >= ? AND position <= ?")
		if f.StreamPrefix != "" {
			// A range on stream_id (BINARY collation compares bytes):
			// [prefix, prefix with its last byte incremented). Valid UTF-8
			// never holds 0xFF, so the increment cannot overflow.
			hi := []byte(f.StreamPrefix)
			hi[len(hi)-1]++
			b.WriteString(" AND stream_id >= ? AND stream_id < ?")
			q.filter = append(q.filter, f.StreamPrefix, string(hi))
		}
	} else {
		b.WriteString("SELECT position, version, coalesce(event_id, ''), type, data, metadata, time FROM events WHERE stream_id = ? AND version >= ? AND version <= ?")
	}
	switch len(f.Types) {
	case 0:
	case 1:
		b.WriteString(" AND type = ?")
		q.filter = append(q.filter, f.Types[0])
	default:
		list, err := json.Marshal(f.Types)
		if err != nil {
			return nil, err
		}
		b.WriteString(" AND type IN (SELECT value FROM json_each(?))")
		q.filter = append(q.filter, string(list))
	}
	for _, m := range f.Metadata {
		// The key goes into a JSON path as a quoted, escaped label and
		// the path is a parameter: no user text is ever spliced into SQL.
		key, err := json.Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		path := "$." + string(key)
		switch m.Op {
		case eventstore.MetadataEq:
			b.WriteString(" AND json_extract(metadata, ?) = ?")
			q.filter = append(q.filter, path, m.Values[0])
		case eventstore.MetadataIn:
			list, err := json.Marshal(m.Values)
			if err != nil {
				return nil, err
			}
			b.WriteString(" AND json_extract(metadata, ?) IN (SELECT value FROM json_each(?))")
			q.filter = append(q.filter, path, string(list))
		case eventstore.MetadataPrefix:
			b.WriteString(" AND substr(json_extract(metadata, ?), 1, length(?)) = ?")
			q.filter = append(q.filter, path, m.Values[0], m.Values[0])
		}
	}
	key := "version"
	if q.all {
		key = "position"
	}
	b.WriteString(" ORDER BY " + key)
	if backwards {
		b.WriteString(" DESC")
	}
	b.WriteString(" LIMIT ?")
	q.sql = b.String()
	return q, nil
}

// Read streams events; see [eventstore.Store.Read]. Rows are fetched in
// pages of a bounded size, never all at once, and no database lock is held
// while the loop body runs. Errors: [eventstore.ErrInvalidInput],
// [eventstore.ErrClosed], a context error, or a wrapped database error.
func (s *Store) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := eventstore.CheckContext(ctx); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if err := eventstore.ValidateReadOptions(streamID, opts.Filter); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if opts.Limit < 0 {
		return eventstore.ErrorSeq(&eventstore.ValidationError{Field: "limit", Index: -1, Reason: fmt.Sprintf("%d is negative", opts.Limit)})
	}
	if err := s.checkOpen(); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if opts.From > math.MaxInt64 && !opts.Backwards {
		// From is a bound (issue 9 item 9): past every key an int64
		// column can hold, forwards there is nothing to read.
		return func(func(eventstore.Recorded, error) bool) {}
	}
	q, err := buildQuery(streamID, opts.Backwards, opts.Filter)
	if err != nil {
		return eventstore.ErrorSeq(fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err))
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		lo, hi := opts.From, uint64(math.MaxInt64)
		if opts.Backwards {
			lo, hi = 0, min(opts.From, math.MaxInt64)
			if hi == 0 {
				hi = math.MaxInt64
			}
		}
		remaining := opts.Limit
		var page []eventstore.Recorded
		// The first pages are small, so that a loop that breaks early
		// (reading the last event backwards, say) fetches little.
		size := firstPageSize
		for {
			n := size
			size = min(size*4, readPageSize)
			if opts.Limit > 0 && remaining < n {
				n = remaining
			}
			var err error
			// Small pages go through a cached prepared statement; large
			// ones through the driver's rows, where preparing per page
			// costs little next to the rows saved from database/sql.
			fetch := s.fetchRaw
			if n <= firstPageSize {
				fetch = s.fetch
			}
			page, err = fetch(ctx, q, lo, hi, n, page[:0])
			if err != nil {
				yield(eventstore.Recorded{}, err)
				return
			}
			// A page ends at n rows or at eventstore.PageBytes; one
			// cut short by bytes is followed by the next at once.
			more := eventstore.PageFull(page, n)
			if opts.Limit > 0 {
				if remaining -= len(page); remaining == 0 {
					more = false
				}
			}
			var last uint64
			if len(page) > 0 {
				last = q.key(page[len(page)-1])
			}
			for _, r := range page {
				if !yield(r, nil) {
					return
				}
			}
			// page's array is reused for the next page, which may be
			// shorter: it must not keep this page's events alive (issue
			// 9 item 3). One clear per page costs less than one per row.
			clear(page)
			if !more {
				return
			}
			if opts.Backwards {
				if last <= 1 {
					return
				}
				hi = last - 1
			} else {
				lo = last + 1
			}
		}
	}
}

func (q *readQuery) key(r eventstore.Recorded) uint64 {
	if q.all {
		return r.Position
	}
	return r.Version
}

// fetch runs one page of q for keys in [lo, hi], appending to page: up to
// limit events, fewer once their sizes reach [eventstore.PageBytes] (the
// rows after are not stepped: SQLite reads row by row, so ending the page
// early costs nothing).
func (s *Store) fetch(ctx context.Context, q *readQuery, lo, hi uint64, limit int, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	if err := ctx.Err(); err != nil {
		return page, err
	}
	if err := s.checkOpen(); err != nil {
		return page, err
	}
	defer s.readLock()()
	args := make([]any, 0, 4+len(q.filter))
	if !q.all {
		args = append(args, q.streamID)
	}
	args = append(args, int64(lo), int64(hi))
	args = append(args, q.filter...)
	args = append(args, limit)
	rows, err := s.query(ctx, q.sql, args...)
	if err != nil {
		return page, s.readError(ctx, err)
	}
	defer rows.Close()
	var (
		pos, ver, t int64
		md          sql.RawBytes
		size        int
	)
	for size < eventstore.PageBytes && rows.Next() {
		var r eventstore.Recorded
		if q.all {
			err = rows.Scan(&pos, &r.StreamID, &ver, &r.ID, &r.Type, &r.Data, &md, &t)
		} else {
			err = rows.Scan(&pos, &ver, &r.ID, &r.Type, &r.Data, &md, &t)
			r.StreamID = q.streamID
		}
		if err != nil {
			return page, s.readError(ctx, err)
		}
		r.Position, r.Version, r.Time = uint64(pos), uint64(ver), time.Unix(0, t).UTC()
		if md != nil {
			if r.Metadata, err = decodeMetadata(md); err != nil {
				return page, fmt.Errorf("%w: event at position %d: malformed metadata: %w", ErrDatabase, pos, err)
			}
		}
		size += eventstore.EventSize(r.Event)
		page = append(page, r)
	}
	if err := rows.Err(); err != nil {
		return page, s.readError(ctx, err)
	}
	return page, nil
}

// fetchRaw is fetch for Read's large pages, on the driver's own rows (and
// with the same limits: limit rows or [eventstore.PageBytes]): it
// skips database/sql's per-column conversions and the copy Scan makes of
// every []byte (the driver's values are fresh, so they are kept as they
// are). The statement is prepared per page, a cost spread over up to
// readPageSize rows; Watch's pages use fetch and its cached
// statements instead.
func (s *Store) fetchRaw(ctx context.Context, q *readQuery, lo, hi uint64, limit int, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	if err := ctx.Err(); err != nil {
		return page, err
	}
	if err := s.checkOpen(); err != nil {
		return page, err
	}
	args := make([]driver.NamedValue, 0, 4+len(q.filter))
	add := func(v any) { args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v}) }
	if !q.all {
		add(q.streamID)
	}
	add(int64(lo))
	add(int64(hi))
	for _, v := range q.filter {
		add(v)
	}
	add(int64(limit))
	defer s.readLock()()
	conn, err := s.readDB.Conn(ctx)
	if err != nil {
		return page, s.readError(ctx, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) (err error) {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot query", dc)
		}
		rows, err := qc.QueryContext(ctx, q.sql, args)
		if err != nil {
			return err
		}
		defer func() {
			// Raw driver rows: unlike *sql.Rows, nothing folds Close's
			// error into the iteration's.
			if cerr := rows.Close(); err == nil {
				err = cerr
			}
		}()
		ncol := 7
		if q.all {
			ncol = 8
		}
		dest := make([]driver.Value, ncol)
		for size := 0; size < eventstore.PageBytes; {
			if err := rows.Next(dest); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			r, err := q.decode(dest)
			if err != nil {
				return err
			}
			size += eventstore.EventSize(r.Event)
			page = append(page, r)
		}
		return nil
	})
	if err != nil {
		return page, s.readError(ctx, err)
	}
	return page, nil
}

// decode makes a Recorded of a row of q's columns as the driver returns
// them: position, [stream_id,] version, event_id, type, data, metadata,
// time.
func (q *readQuery) decode(row []driver.Value) (eventstore.Recorded, error) {
	var r eventstore.Recorded
	var ok [7]bool
	var pos, ver, t int64
	pos, ok[0] = row[0].(int64)
	c := 1
	if q.all {
		r.StreamID, ok[1] = row[1].(string)
		c = 2
	} else {
		r.StreamID, ok[1] = q.streamID, true
	}
	ver, ok[2] = row[c].(int64)
	r.ID, ok[3] = row[c+1].(string)
	r.Type, ok[4] = row[c+2].(string)
	switch d := row[c+3].(type) {
	case nil:
		ok[5] = true
	case []byte:
		r.Data, ok[5] = d, true
	}
	t, ok[6] = row[c+5].(int64)
	for _, good := range ok {
		if !good {
			types := make([]string, len(row))
			for i, v := range row {
				types[i] = fmt.Sprintf("%T", v)
			}
			return r, fmt.Errorf("%w: unexpected column types in events row: %s", ErrDatabase, strings.Join(types, ", "))
		}
	}
	switch md := row[c+4].(type) {
	case nil:
	case string:
		var err error
		if r.Metadata, err = decodeMetadata([]byte(md)); err != nil {
			return r, fmt.Errorf("%w: event at position %d: malformed metadata: %w", ErrDatabase, pos, err)
		}
	default:
		return r, fmt.Errorf("%w: unexpected metadata type %T in events row", ErrDatabase, md)
	}
	r.Position, r.Version, r.Time = uint64(pos), uint64(ver), time.Unix(0, t).UTC()
	return r, nil
}

// readError prefers the context's error and ErrClosed over what the
// driver made of them.
func (s *Store) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return translateError(err, nil)
}

// query runs a reader query through the statement cache.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return s.readDB.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil || st == nil {
		return s.readDB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns the prepared reader statement for query, or nil when the
// cache is full.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.stmts == nil {
		return nil, eventstore.ErrClosed
	}
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	if len(s.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := s.readDB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// Watch follows a stream or AllStreams; see [eventstore.Store.Watch]. It
// is [eventstore.Follow] over this store's notifiers: appends through this
// Store wake the watchers of their stream (and of AllStreams) right after
// their commit, and appends by other processes are noticed by the store's
// single poller ([WithPollInterval]).
// FromPresent starts after the stream's current version, or for
// AllStreams after the head position, as of when iteration begins.
func (s *Store) Watch(ctx context.Context, streamID string, opts eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := eventstore.CheckContext(ctx); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if err := eventstore.ValidateReadOptions(streamID, opts.Filter); err != nil {
		return eventstore.ErrorSeq(err)
	}
	if err := s.checkOpen(); err != nil {
		return eventstore.ErrorSeq(err)
	}
	q, err := buildQuery(streamID, false, opts.Filter)
	if err != nil {
		return eventstore.ErrorSeq(fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err))
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		after, err := opts.From.Resolve(func() (uint64, error) {
			info, err := s.Info(ctx, streamID)
			return info.Version, err
		})
		if err != nil {
			if ctx.Err() == nil {
				yield(eventstore.Recorded{}, err)
			}
			return
		}
		var buf []eventstore.Recorded
		read := func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error) {
			var err error
			buf, err = s.fetch(ctx, q, lo, hi, limit, buf[:0])
			return buf, err
		}
		page := func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
			if after >= math.MaxInt64 {
				// No key can pass it: the watch waits, as every watch
				// does, until its context ends or Close (issue 9 item 9).
				return nil, nil
			}
			return read(ctx, after+1, math.MaxInt64, limit)
		}
		if !opts.Filter.IsZero() {
			// One writer at a time: keys are allocated in commit order.
			page = eventstore.HeadBounded(func(ctx context.Context) (uint64, error) {
				info, err := s.Info(ctx, streamID)
				return info.Version, err
			}, read)
		}
		n, release := s.notifiers.Watch(streamID)
		defer release()
		for r, err := range eventstore.Follow(ctx, n, after, page, q.key) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// Info describes a stream, or for AllStreams the whole store (Version is
// the head position); see [eventstore.Store.Info].
func (s *Store) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if err := eventstore.CheckContext(ctx); err != nil {
		return eventstore.StreamInfo{}, err
	}
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return eventstore.StreamInfo{}, err
	}
	if err := s.checkOpen(); err != nil {
		return eventstore.StreamInfo{}, err
	}
	info := eventstore.StreamInfo{StreamID: streamID}
	var v, n, t int64
	var err error
	unlock := s.readLock()
	if streamID == eventstore.AllStreams {
		err = s.queryRow(ctx, "SELECT position, count, last_time FROM head WHERE id = 1").Scan(&v, &n, &t)
	} else {
		err = s.queryRow(ctx, "SELECT version, version, last_time FROM streams WHERE stream_id = ?", streamID).Scan(&v, &n, &t)
	}
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return info, nil
	case err != nil:
		return eventstore.StreamInfo{}, s.readError(ctx, err)
	}
	info.Version, info.Count = uint64(v), uint64(n)
	if n > 0 {
		info.LastTime = time.Unix(0, t).UTC()
	}
	return info, nil
}

// SaveSnapshot stores sn as the latest snapshot of (sn.StreamID, sn.Name)
// unless a snapshot with a higher version is stored there already; see
// [eventstore.Store.SaveSnapshot]. The save goes through the writer like an
// append (and may share its transaction), which checks in that transaction
// that sn is not past the stream's head.
func (s *Store) SaveSnapshot(ctx context.Context, sn eventstore.Snapshot) error {
	if err := eventstore.CheckContext(ctx); err != nil {
		return err
	}
	if err := eventstore.ValidateSnapshot(sn, 0); err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	if sn.Name == "" {
		sn.Name = eventstore.DefaultSnapshotName
	}
	sn.Time = time.Now()
	r := &request{ctx: ctx, streamID: sn.StreamID, snapshot: &sn, done: make(chan result, 1)}
	return s.submit(ctx, r).err
}

// LoadSnapshot returns the latest snapshot of (streamID, name), or an error
// satisfying errors.Is(err, [eventstore.ErrNotFound]); see
// [eventstore.Store.LoadSnapshot].
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if err := eventstore.CheckContext(ctx); err != nil {
		return eventstore.Snapshot{}, err
	}
	if err := eventstore.ValidateSnapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0); err != nil {
		return eventstore.Snapshot{}, err
	}
	if err := s.checkOpen(); err != nil {
		return eventstore.Snapshot{}, err
	}
	if name == "" {
		name = eventstore.DefaultSnapshotName
	}
	sn := eventstore.Snapshot{StreamID: streamID, Name: name}
	var v, t int64
	unlock := s.readLock()
	err := s.queryRow(ctx, "SELECT version, schema, data, time FROM snapshots WHERE stream_id = ? AND name = ?", streamID, name).
		Scan(&v, &sn.Schema, &sn.Data, &t)
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return eventstore.Snapshot{}, fmt.Errorf("%w: no snapshot %q of stream %q", eventstore.ErrNotFound, name, streamID)
	case err != nil:
		return eventstore.Snapshot{}, s.readError(ctx, err)
	}
	sn.Version, sn.Time = uint64(v), time.Unix(0, t).UTC()
	return sn, nil
}
