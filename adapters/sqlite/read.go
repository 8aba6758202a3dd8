package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// readPageSize is the most rows a read page holds (the front's
// MaxPageRows; its pages start at smallPage rows and grow fourfold up to
// it). Reads are paged by key (version or position) rather than held open
// as one cursor: a reader's lock is then held only while a page is
// fetched, never while the caller's loop body runs. That matters because
// the loop body may append to the same store (a projection writing back),
// because the in-memory database has no WAL (a reader open across a commit
// would make the writer wait), and because a long-open read keeps a WAL
// file from being checkpointed. Memory stays bounded by one page:
// readPageSize rows or [eventstore.PageBytes], whichever comes first.
const readPageSize = 1024

// smallPage is the size of the front's first read page. A page of at most
// this many rows, or one after a page that was not full (a watch at the
// live end), goes through a cached prepared statement; a larger page after
// a full one (a long read or a watch catching up) through the driver's raw
// rows (fetchRaw).
const smallPage = 64

// rawFirstPage is the size from which even a read's first page goes
// through the driver's raw rows (see ReadPage).
const rawFirstPage = 512

// maxCachedStmts bounds the reader statement cache; filter shapes beyond
// it are run unprepared.
const maxCachedStmts = 128

// readQuery is a read's SQL, built on the first page of a Read or Watch
// and kept in its driver.Query's Prepared; pages differ only in their
// bounds and limit.
type readQuery struct {
	sql      string
	all      bool
	streamID string
	filter   []any // arguments of the filter conditions
	// omit: the columns of these fields are not selected (see
	// eventstore.ReadOptions.Omit); ncol is the number selected.
	omit eventstore.Fields
	ncol int

	// lastFull says the previous page of the query was full (it reached
	// its row limit or eventstore.PageBytes): the next one likely is too.
	// The front reads the pages of one query one after the other.
	lastFull bool
}

func buildQuery(streamID string, backwards bool, f eventstore.Filter, omit eventstore.Fields) (*readQuery, error) {
	q := &readQuery{all: streamID == eventstore.AllStreams, streamID: streamID, omit: omit}
	var b strings.Builder
	// The columns, in the order decode and fetch expect them: position,
	// [stream_id,] version, [event_id,] type, data, [metadata,] [time].
	// A Load omits the bracketed ones it does not use: not reading them
	// (and not making a time and an interface box per row) was a fifth of its
	// instructions (BenchmarkLoadSides in cmd/esbench).
	cols := []string{"position"}
	if q.all {
		cols = append(cols, "stream_id")
	}
	cols = append(cols, "version")
	if omit&eventstore.FieldID == 0 {
		cols = append(cols, "coalesce(event_id, '')")
	}
	cols = append(cols, "type", "data")
	if omit&eventstore.FieldMetadata == 0 {
		cols = append(cols, "metadata")
	}
	if omit&eventstore.FieldTime == 0 {
		cols = append(cols, "time")
	}
	q.ncol = len(cols)
	b.WriteString("SELECT " + strings.Join(cols, ", ") + " FROM events WHERE ")
	if q.all {
		b.WriteString("position >= ? AND position <= ?")
		if f.StreamPrefix != "" {
			// A range on stream_id (BINARY collation compares bytes):
			// [prefix, prefix with its last byte incremented). Valid UTF-8
			// never holds 0xFF, so the increment cannot overflow.
			hi := []byte(f.StreamPrefix)
			hi[len(hi)-1]++
			b.WriteString(" AND stream_id >= ? AND stream_id < ?")
			q.filter = append(q.filter, f.StreamPrefix, string(hi))
			if strings.Contains(f.StreamPrefix, "-") {
				// The prefix fixes the category: its index lists the
				// category's events in position order (migration 4),
				// where the range above would gather them from every
				// stream of the prefix and sort them, page after page.
				b.WriteString(" AND category = ?")
				q.filter = append(q.filter, eventstore.Category(f.StreamPrefix))
			}
		}
	} else {
		b.WriteString("stream_id = ? AND version >= ? AND version <= ?")
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

// ReadPage reads the events of q with keys in [r.From, r.To], at most
// r.Limit of them and fewer once they reach [eventstore.PageBytes]; see
// [driver.Driver.ReadPage]. Every filter runs in SQL. No lock or
// connection is held once it returns.
func (d *drv) ReadPage(ctx context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	rq, _ := q.Prepared.(*readQuery)
	if rq == nil {
		var err error
		if rq, err = buildQuery(q.StreamID, q.Backwards, q.Filter, q.Omit); err != nil {
			return page, fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err)
		}
		q.Prepared = rq
	}
	// A large page after a full one (a long read past its first page, a
	// watch catching up) is likely full too: it goes through the driver's
	// raw rows, where preparing per page costs little next to the rows
	// saved from database/sql. Other pages (a read's first, a watch at
	// the live end, which finds a few rows or none) go through a cached
	// prepared statement. For Read this is the rule of the adapter before
	// the front (pages above 64 rows raw): its pages after the first
	// follow a full one.
	//
	// A first page that asks for many rows (a subscription's page, a Read
	// with a large Limit) is taken as likely full too: through the cached
	// statement, a subscription read 1.4x slower than one long Read of
	// the same events (each of its pages is a new Read's first).
	fetch := d.fetch
	if r.Limit > smallPage && (rq.lastFull || r.Limit >= rawFirstPage) {
		fetch = d.fetchRaw
	}
	page, full, err := fetch(ctx, rq, r.From, r.To, r.Limit, page)
	rq.lastFull = full
	return page, err
}

// fetch runs one page of q for keys in [lo, hi], appending to page: up to
// limit events, fewer once their sizes reach [eventstore.PageBytes] (the
// rows after are not stepped: SQLite reads row by row, so ending the page
// early costs nothing). full reports that the page ended at one of those
// limits rather than at the end of the rows.
func (d *drv) fetch(ctx context.Context, q *readQuery, lo, hi uint64, limit int, page []eventstore.Recorded) (_ []eventstore.Recorded, full bool, _ error) {
	if err := ctx.Err(); err != nil {
		return page, false, err
	}
	if d.closed.Load() {
		return page, false, eventstore.ErrClosed
	}
	defer d.readLock()()
	args := make([]any, 0, 4+len(q.filter))
	if !q.all {
		args = append(args, q.streamID)
	}
	args = append(args, int64(lo), int64(hi))
	args = append(args, q.filter...)
	args = append(args, limit)
	rows, err := d.query(ctx, q.sql, args...)
	if err != nil {
		return page, false, d.readError(ctx, err)
	}
	defer rows.Close()
	var (
		pos, ver, t int64
		md          sql.RawBytes
		size, n     int
		r           eventstore.Recorded
	)
	// The scan destinations, in the columns' order (see buildQuery).
	dest := make([]any, 0, 8)
	dest = append(dest, &pos)
	if q.all {
		dest = append(dest, &r.StreamID)
	}
	dest = append(dest, &ver)
	if q.omit&eventstore.FieldID == 0 {
		dest = append(dest, &r.ID)
	}
	dest = append(dest, &r.Type, &r.Data)
	if q.omit&eventstore.FieldMetadata == 0 {
		dest = append(dest, &md)
	}
	if q.omit&eventstore.FieldTime == 0 {
		dest = append(dest, &t)
	}
	for size < eventstore.PageBytes && rows.Next() {
		r = eventstore.Recorded{}
		md = nil
		if err = rows.Scan(dest...); err != nil {
			return page, false, d.readError(ctx, err)
		}
		if !q.all {
			r.StreamID = q.streamID
		}
		r.Position, r.Version = uint64(pos), uint64(ver)
		if q.omit&eventstore.FieldTime == 0 {
			r.Time = time.Unix(0, t).UTC()
		}
		if md != nil {
			if r.Metadata, err = decodeMetadata(md); err != nil {
				return page, false, fmt.Errorf("%w: event at position %d: malformed metadata: %w", ErrDatabase, pos, err)
			}
		}
		size += eventstore.EventSize(r.Event)
		n++
		page = append(page, r)
	}
	if err := rows.Err(); err != nil {
		return page, false, d.readError(ctx, err)
	}
	return page, n >= limit || size >= eventstore.PageBytes, nil
}

// fetchRaw is fetch for large pages, on the driver's own rows (and with
// the same limits: limit rows or [eventstore.PageBytes]): it skips
// database/sql's per-column conversions and the copy Scan makes of every
// []byte (the driver's values are fresh, so they are kept as they are).
// The statement is prepared per page, a cost spread over up to
// readPageSize rows; pages expected to be short (a watch at the live end)
// use fetch and its cached statements instead.
func (d *drv) fetchRaw(ctx context.Context, q *readQuery, lo, hi uint64, limit int, page []eventstore.Recorded) (_ []eventstore.Recorded, full bool, _ error) {
	if err := ctx.Err(); err != nil {
		return page, false, err
	}
	if d.closed.Load() {
		return page, false, eventstore.ErrClosed
	}
	args := make([]sqldriver.NamedValue, 0, 4+len(q.filter))
	add := func(v any) { args = append(args, sqldriver.NamedValue{Ordinal: len(args) + 1, Value: v}) }
	if !q.all {
		add(q.streamID)
	}
	add(int64(lo))
	add(int64(hi))
	for _, v := range q.filter {
		add(v)
	}
	add(int64(limit))
	defer d.readLock()()
	conn, err := d.readDB.Conn(ctx)
	if err != nil {
		return page, false, d.readError(ctx, err)
	}
	defer conn.Close()
	var size, n int
	err = conn.Raw(func(dc any) (err error) {
		qc, ok := dc.(sqldriver.QueryerContext)
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
		dest := make([]sqldriver.Value, q.ncol)
		for size < eventstore.PageBytes {
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
			n++
			page = append(page, r)
		}
		return nil
	})
	if err != nil {
		return page, false, d.readError(ctx, err)
	}
	return page, n >= limit || size >= eventstore.PageBytes, nil
}

// decode makes a Recorded of a row of q's columns as the driver returns
// them: position, [stream_id,] version, [event_id,] type, data,
// [metadata,] [time] (see buildQuery).
func (q *readQuery) decode(row []sqldriver.Value) (eventstore.Recorded, error) {
	var r eventstore.Recorded
	var pos, ver, t int64
	good := len(row) == q.ncol
	var ok bool
	c := 0
	// next returns the next column's value (nil past the row's end,
	// which good already reports).
	next := func() sqldriver.Value {
		c++
		if c > len(row) {
			return nil
		}
		return row[c-1]
	}
	pos, ok = next().(int64)
	good = good && ok
	if q.all {
		r.StreamID, ok = next().(string)
		good = good && ok
	} else {
		r.StreamID = q.streamID
	}
	ver, ok = next().(int64)
	good = good && ok
	if q.omit&eventstore.FieldID == 0 {
		r.ID, ok = next().(string)
		good = good && ok
	}
	r.Type, ok = next().(string)
	good = good && ok
	switch d := next().(type) {
	case nil:
	case []byte:
		r.Data = d
	default:
		good = false
	}
	var md sqldriver.Value
	if q.omit&eventstore.FieldMetadata == 0 {
		md = next()
	}
	if q.omit&eventstore.FieldTime == 0 {
		t, ok = next().(int64)
		good = good && ok
		r.Time = time.Unix(0, t).UTC()
	}
	if !good {
		types := make([]string, len(row))
		for i, v := range row {
			types[i] = fmt.Sprintf("%T", v)
		}
		return r, fmt.Errorf("%w: unexpected column types in events row: %s", ErrDatabase, strings.Join(types, ", "))
	}
	switch md := md.(type) {
	case nil:
	case string:
		var err error
		if r.Metadata, err = decodeMetadata([]byte(md)); err != nil {
			return r, fmt.Errorf("%w: event at position %d: malformed metadata: %w", ErrDatabase, pos, err)
		}
	default:
		return r, fmt.Errorf("%w: unexpected metadata type %T in events row", ErrDatabase, md)
	}
	r.Position, r.Version = uint64(pos), uint64(ver)
	return r, nil
}

// readError prefers the context's error and ErrClosed over what the
// driver made of them.
func (d *drv) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	return translateError(err, nil)
}

// query runs a reader query through the statement cache.
func (d *drv) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return d.readDB.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (d *drv) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.stmt(ctx, query)
	if err != nil || st == nil {
		return d.readDB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns the prepared reader statement for query, or nil when the
// cache is full.
func (d *drv) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	d.stmtMu.Lock()
	defer d.stmtMu.Unlock()
	if d.stmts == nil {
		return nil, eventstore.ErrClosed
	}
	if st, ok := d.stmts[query]; ok {
		return st, nil
	}
	if len(d.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := d.readDB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	d.stmts[query] = st
	return st, nil
}

// Head returns a stream's version, or the last position for AllStreams;
// see [driver.Driver.Head].
func (d *drv) Head(ctx context.Context, streamID string) (uint64, error) {
	var v int64
	var err error
	unlock := d.readLock()
	if streamID == eventstore.AllStreams {
		err = d.queryRow(ctx, "SELECT position FROM head WHERE id = 1").Scan(&v)
	} else {
		err = d.queryRow(ctx, "SELECT version FROM streams WHERE stream_id = ?", streamID).Scan(&v)
	}
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, d.readError(ctx, err)
	}
	return uint64(v), nil
}

// Info describes a stream, or for AllStreams the whole store (Version 0,
// Position the head); see [driver.Driver.Info].
func (d *drv) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	info := eventstore.StreamInfo{StreamID: streamID}
	var v, p, n, del, t int64
	var err error
	unlock := d.readLock()
	if streamID == eventstore.AllStreams {
		err = d.queryRow(ctx, "SELECT 0, position, count, last_time FROM head WHERE id = 1").Scan(&v, &p, &n, &t)
	} else {
		// The last event's row, through the unique (stream_id, version)
		// index, for its position; versions are dense from first_version
		// (raised by truncation, past version by deletion).
		err = d.queryRow(ctx, `SELECT s.version, coalesce(e.position, 0), s.version - s.first_version + 1, s.deleted, s.last_time
			FROM streams s LEFT JOIN events e ON e.stream_id = s.stream_id AND e.version = s.version WHERE s.stream_id = ?`, streamID).Scan(&v, &p, &n, &del, &t)
	}
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return info, nil
	case err != nil:
		return eventstore.StreamInfo{}, d.readError(ctx, err)
	}
	info.Version, info.Position, info.Count, info.Deleted = uint64(v), uint64(p), uint64(n), del != 0
	if n > 0 {
		info.LastTime = time.Unix(0, t).UTC()
	}
	return info, nil
}

// FindEvent returns the event stored with eventID, in one lookup of the
// unique index on event_id (a partial index, which SQLite uses because
// event_id = ? implies the index's event_id IS NOT NULL); see
// [driver.EventFinder].
func (d *drv) FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error) {
	r := eventstore.Recorded{Event: eventstore.Event{ID: eventID}}
	var (
		pos, ver, t int64
		md          sql.NullString
	)
	unlock := d.readLock()
	err := d.queryRow(ctx, "SELECT position, stream_id, version, type, data, metadata, time FROM events WHERE event_id = ?", eventID).
		Scan(&pos, &r.StreamID, &ver, &r.Type, &r.Data, &md, &t)
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return eventstore.Recorded{}, fmt.Errorf("%w: no event with ID %q", eventstore.ErrNotFound, eventID)
	case err != nil:
		return eventstore.Recorded{}, d.readError(ctx, err)
	}
	if md.Valid {
		if r.Metadata, err = decodeMetadata([]byte(md.String)); err != nil {
			return eventstore.Recorded{}, fmt.Errorf("%w: event at position %d: malformed metadata: %w", ErrDatabase, pos, err)
		}
	}
	r.Position, r.Version, r.Time = uint64(pos), uint64(ver), time.Unix(0, t).UTC()
	return r, nil
}
