package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// maxReadPage is the largest page of a read, in rows (the front's
// Config.MaxPageRows): the front starts a read's pages small and grows
// them fourfold up to it. Every page also ends at eventstore.PageBytes
// (see readState).
const maxReadPage = 4096

// readState is what ReadPage keeps in driver.Query.Prepared for the pages
// of one read or watch: the query's text, built once (it depends only on
// the query's shape, so pgx prepares a few statements per connection, not
// one per call), and whether the server cuts the pages at
// eventstore.PageBytes.
//
// The server cuts a page with a running sum of its events' sizes, which
// costs it about 0.3 µs a row: too much for small events (read_stream's
// rate fell by a third or more with it on every page). So the first page
// is cut, the events' sizes being unknown, and later ones only once the
// last page's largest event, times the page's rows, reaches the budget;
// from then on for good (a watch's pages are always cut). A page read uncut that meets larger events than
// that is still cut at the budget by fetch, which then discards the rest
// of its LIMIT: that costs transfer, never memory, and happens at most
// once per read or watch (such a page makes the cut for good).
type readState struct {
	// sql holds the page query without, and with, the server's cut
	// ([0], [1]), each bounded by $2 or by the safe head it asks for
	// ([0], [1]: see fetchSafe), each with its key range written four
	// ways: bounded on both sides, or open at the start, the end or both
	// (see keyRange). Each is built from the template the first time a
	// page needs it: a read uses a few of the sixteen.
	sql  [2][2][4]string
	args []any // its arguments after $1-$3: stream, filter values

	from, cols, key, order string // the template and its parts
	size                   string // an event's size in SQL, as the client counts it (readColumns)
	all, backwards         bool   // a read of the whole log (key position); its direction
	safe, unknowns         uint64 // the safe head last asked, and pgDriver.unknowns then

	pages      int // pages read so far
	largest    int // size of the largest event of the last page
	cutForGood bool
}

// ReadPage appends to page the events of q with keys in [r.From, r.To],
// at most r.Limit and up to eventstore.PageBytes, in one query; see
// driver.Driver.ReadPage. The connection goes back to the pool before it
// returns. A stream's versions are dense and committed in order. The
// whole log's positions are not (appends commit side by side, see
// migrations/0011), so a page of it goes no further than the safe head,
// read just before it in a statement of its own (sent with the page's,
// one round trip: see fetchSafe): no event below the page's last can
// commit after it, and the front's pages join up without a snapshot.
//
// A read that failed because the connection was lost returns an error
// wrapping driver.ErrConnectionLost, which the front's watches retry.
func (d *pgDriver) ReadPage(ctx context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	st := d.prepare(q)
	// A watch's pages are always cut by the server: they alternate
	// between catch-up pages of any size and short live ones, so a guess
	// drawn from the last page would often be wrong, and live pages are
	// short anyway.
	cut := q.Watch || st.pages == 0 || st.cutForGood
	if !cut && st.largest*r.Limit >= eventstore.PageBytes {
		st.cutForGood, cut = true, true
	}
	to, ask, unknowns := r.To, false, uint64(0)
	if st.all {
		// The first page of a read or watch asks for the safe head: it
		// must see whatever committed before it began, even if no
		// NOTIFY told of it yet. Later pages read without asking up to
		// the safe head last asked or the settled head the store knows
		// (its own commits, the settler, the poll), whichever is
		// higher, unless a position seen committed (another process's
		// NOTIFY) lies past it, positions unknown changed (a listener
		// reconnect), or the page starts past it: then they ask. What
		// commits later is seen, and wakes the watches again.
		var safe uint64
		safe, unknowns = max(st.safe, d.head.Load()), d.unknowns.Load()
		ask = st.pages == 0 || safe < d.seen.Load() || unknowns != st.unknowns || safe < r.From
		if !ask {
			if to = min(to, safe); to < r.From {
				st.pages++
				return page, nil // nothing settled past r.From yet
			}
		}
	}
	sql, args := st.query(r, to, cut, ask)
	start := len(page)
	var (
		full bool
		err  error
	)
	if ask {
		var safe uint64
		if page, full, safe, err = d.fetchSafe(ctx, sql, args, page); err != nil {
			return page, err
		}
		st.safe, st.unknowns = safe, unknowns
	} else if page, full, err = d.fetch(ctx, sql, args, page); err != nil {
		return page, err
	}
	st.pages++
	if !q.Watch && !st.cutForGood {
		// Only a read that may still go uncut needs its largest event.
		st.largest = largestEvent(page[start:])
	}
	if full && !cut {
		st.cutForGood = true
	}
	return page, nil
}

// query returns the text and arguments of the page at r, read no
// further than to (r.To, or the safe head below it for the whole log).
// The range's shape follows r.To: to bounds an open end as a filter,
// not as the index condition (see keyRange). A page that asks for the
// safe head (see fetchSafe) reads no further than it either: its bound
// is the least of to and the value fetchSafe's statement before it set.
func (st *readState) query(r driver.Range, to uint64, cut, ask bool) (string, []any) {
	args := make([]any, 0, 3+len(st.args))
	args = append(args, int64(r.From), int64(to), int64(r.Limit))
	args = append(args, st.args...)
	shape := 0
	if r.From <= 1 {
		shape |= openStart
	}
	if r.To >= math.MaxInt64 && (!st.all || !st.backwards) {
		// A backward read of the whole log starts at the safe head: a
		// bound of the index walk, as "key <= $2".
		shape |= openEnd
	}
	c, a := 0, 0
	if cut {
		c = 1
	}
	to2 := "$2"
	if ask {
		a, to2 = 1, "least($2::int8, current_setting('"+safeHeadSetting+"')::int8)"
	}
	if st.sql[c][a][shape] == "" {
		from := strings.Replace(st.from, keyRangeMark, keyRange(st.key, to2, shape), 1)
		// A forward read of the whole log drops the rows past $2 (the
		// safe head) above its LIMIT, where the planner cannot push the
		// bound down into the index walk (see keyRange).
		past := ""
		if st.all && !st.backwards && shape&openEnd != 0 {
			past = " AND " + st.key + " <= " + to2
		}
		switch {
		case cut:
			st.sql[c][a][shape] = "SELECT " + st.cols + " FROM (SELECT " + st.cols + ", sum(" + st.size + ") OVER (ORDER BY " + st.order +
				" ROWS UNBOUNDED PRECEDING) - (" + st.size + ") AS bytes_before" + from +
				") AS page WHERE bytes_before < " + strconv.Itoa(eventstore.PageBytes) + past + " ORDER BY " + st.order
		case past != "":
			st.sql[c][a][shape] = "SELECT " + st.cols + " FROM (SELECT " + st.cols + from + ") AS page WHERE true" + past + " ORDER BY " + st.order
		default:
			st.sql[c][a][shape] = "SELECT " + st.cols + from
		}
	}
	return st.sql[c][a][shape], args
}

// The shapes of a page's key range, as indexes of readState.sql.
const (
	openStart = 1 << iota // the range starts at the first key
	openEnd               // the range runs to the end
)

// keyRange is the page query's condition on its key for a range shape,
// with to the expression of its upper bound ($2, or below it).
// An open side is not written as a bound: on a table without statistics
// (freshly filled, not analyzed yet) PostgreSQL takes "key BETWEEN $1 AND
// $2" to keep 0.5% of the rows whatever the values, and planned a read to
// the end as a bitmap scan of every row after $1 and a sort, for every
// page: a catch-up of 100,000 fresh events read them all again for each
// 4,096-event page (60 ms a page against 1.3 ms for the index walk that
// "key >= $1" alone gets; issue 11's sub_catchup). $1 and $2 stay in the
// text, as conditions on no row, so that every shape takes the same
// arguments. A forward read of the whole log to its end stops at the
// safe head ($2) all the same: query drops the rows past it above the
// LIMIT.
func keyRange(key, to string, shape int) string {
	switch shape {
	case openStart | openEnd:
		return "$1::int8 IS NOT NULL AND $2::int8 IS NOT NULL"
	case openStart:
		return key + " <= " + to + " AND $1::int8 IS NOT NULL"
	case openEnd:
		return key + " >= $1 AND $2::int8 IS NOT NULL"
	}
	return key + " BETWEEN $1 AND " + to
}

// largestEvent returns the size of the largest event in page.
func largestEvent(page []eventstore.Recorded) int {
	n := 0
	for i := range page {
		n = max(n, eventstore.EventSize(page[i].Event))
	}
	return n
}

// eventSizeSQL is eventstore.EventSize in SQL: the bytes of data plus
// those of the metadata's keys and values (jsonb_each_text yields them
// unescaped, as Go decodes them). octet_length reads a TOASTed value's
// size from its pointer, without fetching the value.
// Kept in int4, so that the running sum is an int8 sum, not a numeric one.
const eventSizeSQL = "octet_length(data) + CASE WHEN metadata IS NULL THEN 0 ELSE " +
	"coalesce((SELECT sum(octet_length(k) + octet_length(v)) FROM jsonb_each_text(metadata) AS m(k, v))::int4, 0) END"

// readColumns returns the columns of a read's page query (those of
// queries.cols, in order, each of its type, an omitted one as a NULL) and
// the expression of an event's size that cuts its pages. The size counts
// what the client keeps, as watch.PageFull does: with the metadata
// omitted, the data alone. Counting more would end a page early whose
// events the front, summing them without their metadata, takes for
// fewer than a page's worth, and so for the end of the read.
func readColumns(omit eventstore.Fields) (cols, size string) {
	col := func(f eventstore.Fields, name, typ string) string {
		if omit&f != 0 {
			return "NULL::" + typ + " AS " + name
		}
		return name
	}
	cols = "position, stream_id, version, " + col(eventstore.FieldID, "event_id", "text") + ", type, data, " +
		col(eventstore.FieldMetadata, "metadata", "jsonb") + ", " + col(eventstore.FieldTime, "occurred_at", "timestamptz")
	size = eventSizeSQL
	if omit&eventstore.FieldMetadata != 0 {
		size = "octet_length(data)"
	}
	return cols, size
}

// keyRangeMark stands for the key range in the page query's text until
// prepare writes each shape of it (keyRange).
const keyRangeMark = "\x00range\x00"

// streamPageLimit is a stream's page query's LIMIT: $3, hidden from the
// planner in a subquery. A plan PostgreSQL makes for the values at hand
// (a prepared statement's first five executions on each connection)
// otherwise takes a LIMIT above its estimate of the stream's rows as no
// limit at all, and on a table without statistics (freshly filled, not
// analyzed yet) it estimates any stream at 0.5% of the table: it then
// read the stream's every row after $1 and sorted them, for each page
// (110-130 ms a page of 4,096 of a 300,000-event stream, against 1.3 ms
// for the walk of its (stream_id, version) index that the LIMIT, unknown,
// gets, as in the generic plan). Four such pages per connection were
// most of esbench read_stream's gap to the driver.
const streamPageLimit = "(SELECT $3::int8)"

// prepare returns q's readState, building it on q's first page.
//
// The page query selects keys between $1 and $2 in q's order, LIMIT $3 (an
// open side of the range is not written as a bound: see keyRange; a
// stream's LIMIT is streamPageLimit).
// The cut variant (issue 9 item 3) also ends the page after the first row
// that brings the sizes of its events to eventstore.PageBytes. The server
// does the cutting, with a running sum, because the client cannot do it
// cheaply: it would have to read and discard the rest of the LIMIT, which
// the server sends whatever the client keeps (up to 4,096 rows of 1 MiB),
// and canceling a query costs the pool its connection. The running sum's
// frame starts at the page's first row and ends at the current one, which
// PostgreSQL computes incrementally (a frame ending at 1 PRECEDING, which
// would spare the subtraction, took twice as long); LIMIT still caps the
// scan. It costs the server about 0.3 µs a row (1.8 against 0.65 ms for a
// page of 4,096 small events, EXPLAIN ANALYZE, best of 30), which is why
// ReadPage does without it where it can (see readState).
func (d *pgDriver) prepare(q *driver.Query) *readState {
	if st, ok := q.Prepared.(*readState); ok {
		return st
	}
	args := make([]any, 3, 8) // $1-$3 are the page's: set by query
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	key := "position"
	if q.StreamID != eventstore.AllStreams {
		key = "version"
	}
	order := key
	if q.Backwards {
		order += " DESC"
	}
	var b strings.Builder
	b.WriteString(" FROM ")
	b.WriteString(d.schema)
	b.WriteString(".events WHERE ")
	if q.StreamID != eventstore.AllStreams {
		b.WriteString("stream_id = ")
		b.WriteString(arg(q.StreamID))
		b.WriteString(" AND ")
	}
	b.WriteString(keyRangeMark)
	f := q.Filter
	if f.StreamPrefix != "" {
		b.WriteString(" AND starts_with(stream_id, ")
		b.WriteString(arg(f.StreamPrefix))
		b.WriteString(")")
		if strings.Contains(f.StreamPrefix, "-") {
			// The prefix fixes the category, whose index lists its events
			// in position order (migration 7); the expression must be the
			// index's, word for word, for the planner to match it.
			b.WriteString(" AND split_part(stream_id, '-', 1) = ")
			b.WriteString(arg(eventstore.Category(f.StreamPrefix)))
		}
	}
	if p := f.Partitions; p.Count > 0 {
		// Events stored before schema version 6 have no stream_hash:
		// the function computes it for them (slowly, per row). The
		// partitions kept are written as those NOT dropped: the planner
		// guesses each "=" as 0.5% of the rows, so "= ANY" of 4 of 12
		// partitions looked like a 2% filter and it chose to sort the
		// whole log rather than walk the position index (a member's
		// page then cost a scan of every event); "<> ALL" of the other
		// 8 looks like 96%, and the index walk, which stops at the
		// page's LIMIT, is the right plan whatever the true share.
		// PostgreSQL 15 hashes a long constant list, so a long one costs
		// no more per row (TestPartitionsPlan).
		if others := otherPartitions(p); len(others) > 0 {
			fmt.Fprintf(&b, " AND coalesce(stream_hash, %s.stream_hash(stream_id)) %% %d <> ALL(%s)", d.schema, p.Count, arg(others))
		}
	}
	switch len(f.Types) {
	case 0:
	case 1:
		// "=" rather than "= ANY": the (type, position) index then gives
		// the type's events in position order (migration 7).
		b.WriteString(" AND type = ")
		b.WriteString(arg(f.Types[0]))
	default:
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
	if q.StreamID != eventstore.AllStreams {
		b.WriteString(" LIMIT " + streamPageLimit)
	} else {
		b.WriteString(" LIMIT $3")
	}
	from := b.String()
	pc := d.q.pageCols[q.Omit&eventstore.AllFields] // the front refuses other bits
	st := &readState{args: args[3:], from: from, cols: pc.cols, size: pc.size, key: key, order: order, all: q.StreamID == eventstore.AllStreams, backwards: q.Backwards}
	q.Prepared = st
	return st
}

// ReadsPartitions reports that ReadPage applies Filter.Partitions; see
// driver.PartitionReader.
func (d *pgDriver) ReadsPartitions() bool { return true }

// otherPartitions returns the partitions of p.Count not in p.Of.
func otherPartitions(p eventstore.Partitions) []int64 {
	in := make([]bool, p.Count)
	for _, o := range p.Of {
		in[o] = true
	}
	var out []int64
	for i, ok := range in {
		if !ok {
			out = append(out, int64(i))
		}
	}
	return out
}

// fetch runs a query and appends its events to page, up to
// eventstore.PageBytes: a page the server did not cut (see readState)
// ends there too, and the rows after are read and discarded as they
// come, never held. full reports that the page reached PageBytes. The
// connection is released before it returns.
func (d *pgDriver) fetch(ctx context.Context, sql string, args []any, page []eventstore.Recorded) (_ []eventstore.Recorded, full bool, _ error) {
	if d.closed.Load() {
		return page, false, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	rows, err := d.pool.Query(ctx, sql, args...)
	if err == nil {
		page, full, err = scanPage(rows, page)
	}
	if err != nil {
		return page, false, d.callErr(ctx, err, "read")
	}
	return page, full, nil
}

// scanPage appends the events of rows to page, up to
// eventstore.PageBytes, and closes rows. It reports whether the page
// reached PageBytes.
func scanPage(rows pgx.Rows, page []eventstore.Recorded) (_ []eventstore.Recorded, full bool, _ error) {
	defer rows.Close()
	var sc scanner
	size := 0
	for size < eventstore.PageBytes && rows.Next() {
		r, err := sc.next(rows)
		if err != nil {
			return page, false, err
		}
		size += eventstore.EventSize(r.Event)
		page = append(page, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page, false, err
	}
	return page, size >= eventstore.PageBytes, nil
}

// safeHeadSetting is the setting fetchSafe's statement leaves the safe
// head in, for the page query after it in the same transaction.
const safeHeadSetting = "esv2.safe_head"

// fetchSafe is fetch for a page of the whole log that asks for the safe
// head: it returns the head too. The statement that reads it and the
// page query, which reads no further (see readState.query), are sent as
// one pipelined batch, as execGroup sends an append: one round trip, not
// two (on localhost, where a round trip is about 50 us, esbench
// read_category measured no difference; it counts where the database is
// further away). They run
// in a transaction at READ COMMITTED, whatever the session's
// default_transaction_isolation, so that the page's snapshot is taken
// after the head is read, as the guarantee needs: at REPEATABLE READ the
// head's statement would take the transaction's one snapshot before it
// reads the locks, and an append committing in between would be settled
// by the head and missing from the page.
func (d *pgDriver) fetchSafe(ctx context.Context, sql string, args []any, page []eventstore.Recorded) (_ []eventstore.Recorded, full bool, safe uint64, _ error) {
	if d.closed.Load() {
		return page, false, 0, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY")
	b.Queue(d.q.setHead, d.lockKey)
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := d.pool.SendBatch(ctx, b)
	defer func() { _ = br.Close() }() // closed below on success; after a failure, its first error is the one returned
	var h int64
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&h)
	}
	if err != nil {
		return page, false, 0, d.callErr(ctx, err, "read head")
	}
	rows, err := br.Query()
	if err == nil {
		page, full, err = scanPage(rows, page)
	}
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return page, false, 0, d.callErr(ctx, err, "read")
	}
	return page, full, uint64(h), nil
}

// callCtx returns a context for one database call: ctx, also ended when
// the store closes, so that Close, which waits for every connection to
// come back to the pool it closes, is not held up by a call waiting for a
// lock another session holds (issue 9 item 4). The call then gets
// ErrClosed (see callErr).
func (d *pgDriver) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.bgCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// callErr translates the error of a call other than an append. A call cut
// short by Close (its connection closed or its connection attempt
// canceled by the pool) gets ErrClosed, whatever the database said,
// unless its own ctx ended. A lost connection (see connectionLost) is
// marked with driver.ErrConnectionLost, so that the front can run a
// watch's page again on a new one.
func (d *pgDriver) callErr(ctx context.Context, err error, op string) error {
	if d.closed.Load() && (ctx.Err() == nil || d.bgCtx.Err() != nil) {
		return eventstore.ErrClosed
	}
	if connectionLost(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, driver.ErrConnectionLost, err)
	}
	return translateError(err, opErr(op))
}

// scanner turns rows of queries.cols into Recorded values.
//
// Rows in the formats pgx asks for by default (see rawColumns) are
// decoded from their raw values, without pgx's Scan: its per-column
// plans took a third of a read's client CPU time (cmd/esbench
// read_stream profile), more than the bare driver's whole loop spends
// beyond it. The stream ID and type, which repeat from row to row, are
// decoded into the previous row's strings when equal, without
// allocating. Rows in other formats (a DSN that sets
// default_query_exec_mode=simple_protocol gets only text) go through
// Scan.
type scanner struct {
	checked, raw bool // the rows' columns were checked; they can be decoded raw
	jsonbBinary  bool // raw: metadata comes in jsonb's binary format

	position, version int64
	stream, typ       string
	eventID           pgtype.Text
	data, meta        []byte
	at                pgtype.Timestamptz // NULL: omitted (see readColumns)
}

// next returns the current row of rows as a Recorded.
func (sc *scanner) next(rows pgx.Rows) (eventstore.Recorded, error) {
	if !sc.checked {
		fds := rows.FieldDescriptions()
		sc.checked, sc.raw = true, rawColumns(fds)
		sc.jsonbBinary = sc.raw && fds[6].Format == pgx.BinaryFormatCode
	}
	if sc.raw {
		return sc.decode(rows.RawValues())
	}
	return sc.scan(rows)
}

// rawOIDs are the type OIDs of queries.cols, in order.
var rawOIDs = [...]uint32{pgtype.Int8OID, pgtype.TextOID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.ByteaOID, pgtype.JSONBOID, pgtype.TimestamptzOID}

// rawColumns reports whether rows described by fds are of queries.cols's
// types in formats decode reads: the numbers, bytes and times in the
// binary format; text in either (the same bytes); jsonb in either (the
// binary one is the text after a version byte).
func rawColumns(fds []pgconn.FieldDescription) bool {
	if len(fds) != len(rawOIDs) {
		return false
	}
	for i, fd := range fds {
		switch {
		case fd.DataTypeOID != rawOIDs[i]:
			return false
		case fd.DataTypeOID == pgtype.TextOID || fd.DataTypeOID == pgtype.JSONBOID:
			if fd.Format != pgx.TextFormatCode && fd.Format != pgx.BinaryFormatCode {
				return false
			}
		case fd.Format != pgx.BinaryFormatCode:
			return false
		}
	}
	return true
}

// decode turns the binary values of a row of queries.cols (see
// rawColumns) into a Recorded, as scan does through pgx.
func (sc *scanner) decode(v [][]byte) (eventstore.Recorded, error) {
	// A NULL time is an omitted one (see readColumns).
	if len(v) != len(rawOIDs) || len(v[0]) != 8 || len(v[2]) != 8 || (v[7] != nil && len(v[7]) != 8) || v[1] == nil || v[4] == nil {
		return eventstore.Recorded{}, errors.New("postgres: read: malformed row")
	}
	position := int64(binary.BigEndian.Uint64(v[0]))
	if string(v[1]) != sc.stream { // compared without a conversion
		sc.stream = string(v[1])
	}
	if string(v[4]) != sc.typ {
		sc.typ = string(v[4])
	}
	var at time.Time
	if v[7] != nil {
		var err error
		if at, err = timestamptz(v[7]); err != nil {
			return eventstore.Recorded{}, fmt.Errorf("postgres: read: event at position %d: %w", position, err)
		}
	}
	r := eventstore.Recorded{
		Event:    eventstore.Event{Type: sc.typ, Time: at},
		StreamID: sc.stream,
		Version:  binary.BigEndian.Uint64(v[2]),
		Position: uint64(position),
	}
	if v[3] != nil {
		r.ID = string(v[3])
	}
	if len(v[5]) > 0 {
		r.Data = append([]byte(nil), v[5]...)
	}
	m := v[6]
	if len(m) > 0 && sc.jsonbBinary {
		// jsonb's binary format: a version byte (1), then the text.
		if m[0] != 1 {
			return eventstore.Recorded{}, fmt.Errorf("postgres: read: metadata of event at position %d: unknown jsonb version %d", position, m[0])
		}
		m = m[1:]
	}
	if len(m) > 0 {
		var md map[string]string
		if err := json.Unmarshal(m, &md); err != nil {
			return eventstore.Recorded{}, fmt.Errorf("decode metadata of event at position %d: %w", position, err)
		}
		r.Metadata = md
	}
	return r, nil
}

// timestamptz decodes a timestamptz in the binary format: microseconds
// since 2000-01-01 UTC. Infinities, which the store never writes, are
// errors, as pgx makes them when scanning into a time.Time.
func timestamptz(v []byte) (time.Time, error) {
	us := int64(binary.BigEndian.Uint64(v))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, errors.New("occurred_at is infinite")
	}
	const y2k = 946_684_800 // 2000-01-01 in Unix seconds
	return time.Unix(y2k+us/1_000_000, us%1_000_000*1_000).UTC(), nil
}

func (sc *scanner) scan(rows pgx.Row) (eventstore.Recorded, error) {
	sc.data, sc.meta = nil, nil
	if err := rows.Scan(&sc.position, &sc.stream, &sc.version, &sc.eventID, &sc.typ, &sc.data, &sc.meta, &sc.at); err != nil {
		return eventstore.Recorded{}, err
	}
	r := eventstore.Recorded{
		Event: eventstore.Event{
			ID:   sc.eventID.String,
			Type: sc.typ,
			Data: sc.data,
		},
		StreamID: sc.stream,
		Version:  uint64(sc.version),
		Position: uint64(sc.position),
	}
	if sc.at.Valid {
		if sc.at.InfinityModifier != pgtype.Finite {
			// As scanning into a time.Time makes it, and decode.
			return eventstore.Recorded{}, fmt.Errorf("postgres: read: event at position %d: occurred_at is infinite", sc.position)
		}
		r.Time = sc.at.Time.UTC()
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

// Head returns the current version of a stream, or the head position for
// AllStreams: the safe head (see safeHead).
func (d *pgDriver) Head(ctx context.Context, streamID string) (uint64, error) {
	if streamID == eventstore.AllStreams {
		return d.safeHead(ctx)
	}
	if d.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	var v int64
	if err := d.pool.QueryRow(ctx, d.q.streamVersion, streamID).Scan(&v); err != nil {
		return 0, d.callErr(ctx, err, "read head")
	}
	return uint64(v), nil
}

// Info describes streamID, or the whole store for eventstore.AllStreams
// (Version 0, Position the head). A stream without events has Version 0
// and is not an error. Versions are dense from the first kept
// (first_version), so a stream's count is its version minus the versions
// truncated; the store's is kept by its writers (migrations/0011). Both
// are read without a scan.
func (d *pgDriver) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if d.closed.Load() {
		return eventstore.StreamInfo{}, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	info := eventstore.StreamInfo{StreamID: streamID}
	var (
		v, p, first int64
		at          pgtype.Timestamptz
		deleted     bool
		err         error
	)
	if streamID == eventstore.AllStreams {
		var count int64
		err = d.pool.QueryRow(ctx, d.q.allHead, d.lockKey).Scan(&p, &count, &at)
		if err == nil {
			info.Position, info.Count = uint64(p), uint64(max(count, 0))
		}
	} else {
		err = d.pool.QueryRow(ctx, d.q.streamHead, streamID).Scan(&v, &p, &at, &first, &deleted)
		if err == nil {
			info.Version, info.Position, info.Deleted = uint64(v), uint64(p), deleted
			if p > 0 {
				info.Count = uint64(v - first + 1)
			}
		}
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return info, nil
	case err != nil:
		return eventstore.StreamInfo{}, d.callErr(ctx, err, "info")
	}
	if at.Valid && info.Count > 0 {
		info.LastTime = at.Time.UTC()
	}
	return info, nil
}

// FindEvent returns the event stored with eventID, in one probe of the
// unique index on event_id, or an error satisfying errors.Is(err,
// eventstore.ErrNotFound).
func (d *pgDriver) FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error) {
	page, _, err := d.fetch(ctx, d.q.findEvent, []any{eventID}, nil)
	switch {
	case err != nil:
		return eventstore.Recorded{}, err
	case len(page) == 0:
		return eventstore.Recorded{}, fmt.Errorf("postgres: find event %q: %w", eventID, eventstore.ErrNotFound)
	}
	return page[0], nil
}

// safeHead returns the last position of the whole log a reader may pass:
// every event at or below it has committed or never will (see
// migrations/0011, safe_head).
func (d *pgDriver) safeHead(ctx context.Context) (uint64, error) {
	if d.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	var h int64
	if err := d.pool.QueryRow(ctx, d.q.head, d.lockKey).Scan(&h); err != nil {
		return 0, d.callErr(ctx, err, "read head")
	}
	return uint64(h), nil
}
