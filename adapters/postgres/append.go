package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// faultHooks let tests land a fault in the exact window where a real one
// does harm (issue 9 item 1), or hold the writer there.
type faultHooks struct {
	// sent runs once a group's batch is sent, before its results are
	// read.
	sent func(pc *pgconn.PgConn)
	// committed runs once COMMIT's result has arrived; it returns what
	// the batch's Close is taken to report.
	committed func(pc *pgconn.PgConn, closeErr error) error
	// gaveUp runs when an append's context ended after the writer took
	// it, before Append waits for its outcome.
	gaveUp func()
}

// Append appends b to its stream if the stream's version matches
// b.Expected; see driver.Driver.Append for the rules. The append is
// handed to the store's writer, which commits it together with the
// appends other goroutines made meanwhile (group commit), each with its
// own checks and result.
//
// An append whose payload is over WithMaxAppendSize is refused with an
// *eventstore.ValidationError before it is queued.
//
// Cancellation (the rule of every store, see driver.Driver.Append): if
// ctx ends while the append waits in the writer's queue, it is withdrawn
// (nothing is written) and ctx's error returned; once the writer has
// taken it, Append waits for its real outcome, even if ctx has ended
// meanwhile: success, a conflict, ErrUnknownOutcome... Before, it
// returned ctx's error then, and the caller could not tell whether its
// events were stored (issue 10). The writer does not read b.Events after
// Append returns.
func (d *pgDriver) Append(ctx context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	size := appendSize(b.StreamID, b.Events)
	if size > d.cfg.maxAppend {
		return eventstore.AppendResult{}, &eventstore.ValidationError{Field: "events", Index: -1,
			Reason: fmt.Sprintf("%d bytes in all is over the limit of %d per append (WithMaxAppendSize): split the batch", size, d.cfg.maxAppend)}
	}
	req := &appendReq{ctx: ctx, stream: b.StreamID, expected: b.Expected, events: b.Events, size: size, done: make(chan appendResp, 1)}
	if err := d.writer.submit(req); err != nil {
		return eventstore.AppendResult{}, err
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
	}
	if d.writer.withdraw(req) {
		return eventstore.AppendResult{}, ctx.Err()
	}
	// Taken: the group may be in the database already. The writer
	// commits it under its own context and answers every append it took.
	if h := d.hooks; h != nil && h.gaveUp != nil {
		h.gaveUp()
	}
	r := <-req.done
	return r.res, r.err
}

type appendReq struct {
	// ctx is the caller's: the writer drops an append whose ctx ended
	// before it was sent.
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.Event
	size     int             // appendSize
	done     chan appendResp // buffered: the writer never blocks on it
}

// appendSize bounds what an append adds to append_batch's parameters:
// its events' data, type and ID, metadata as JSON (each byte escaped at
// worst to 6, plus quotes, colon and comma per entry) and 64 bytes per
// event for the array elements' headers, plus the stream ID.
func appendSize(streamID string, events []eventstore.Event) int {
	n := len(streamID) + 64
	for i := range events {
		ev := &events[i]
		n += 64 + len(ev.Data) + len(ev.Type) + len(ev.ID)
		for k, v := range ev.Metadata {
			n += 6*(len(k)+len(v)) + 6
		}
	}
	return n
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

// writer is the store's single append goroutine. Appends queue up while
// it commits the previous group, and it takes them all (up to
// cfg.groupEvents events) into the next transaction: the more goroutines
// append at once, the more appends one commit carries. See doc.go, "Global
// order".
//
// An append is queued while it is in queue: take removes the appends it
// sends, withdraw one whose caller gave up, close the rest, all under mu,
// so each append is answered by exactly one of them.
type writer struct {
	d      *pgDriver
	mu     sync.Mutex
	queue  []*appendReq
	closed bool
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

func newWriter(d *pgDriver) *writer {
	return &writer{d: d, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *writer) submit(r *appendReq) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return eventstore.ErrClosed
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// withdraw removes r from the queue and reports whether it was still
// there: if not, the writer took it (or Close answered it), and r.done
// will carry its answer.
func (w *writer) withdraw(r *appendReq) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.queue, r)
	if i < 0 {
		return false
	}
	w.queue = slices.Delete(w.queue, i, i+1)
	return true
}

func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		for {
			group := w.take()
			if group == nil {
				break
			}
			start := time.Now()
			w.d.commitGroup(group)
			w.linger(len(group), min(time.Since(start)/2, maxLinger))
		}
	}
}

// maxLinger bounds how long the writer waits after a group for its
// callers' next appends (see linger).
const maxLinger = 2 * time.Millisecond

// linger waits, after a group of n appends was answered, until those
// callers may have appended again (n more appends are queued than were
// when it began, up to a group's limit), or for d, whichever comes first.
// Without it the callers of a busy store split into two cohorts that take
// turns: the writer takes the appends queued while a group committed, a
// moment before the group's callers, just answered, append again, and so
// every group carries half of them (32 of 64 goroutines, 8 of 16).
// Waiting for them merges the cohorts, and a group carries all; a caller
// that appends one event at a time (n = 1) never waits. d is half the
// last group's commit, at most maxLinger: the cost of a lone group's
// wait, next to the commit it follows.
func (w *writer) linger(n int, d time.Duration) {
	if n < 2 || d <= 0 {
		return
	}
	w.mu.Lock()
	want := min(len(w.queue)+n, w.d.cfg.groupEvents)
	w.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		w.mu.Lock()
		queued := len(w.queue)
		w.mu.Unlock()
		if queued >= want {
			return
		}
		select {
		case <-w.wake:
		case <-t.C:
			return
		case <-w.stop:
			return
		}
	}
}

// take removes the next group from the queue: nil when the queue is
// empty. A group holds at most cfg.groupEvents events and cfg.groupBytes
// bytes of payload (one larger append goes alone) and no event ID twice:
// append_batch checks stored IDs once per group, so an ID shared by two
// appends sends the second to the next group. Appends whose context
// ended are answered with its error and not sent.
func (w *writer) take() []*appendReq {
	w.mu.Lock()
	n, size, bytes := 0, 0, 0
	var ids map[string]struct{}
scan:
	for n < len(w.queue) {
		r := w.queue[n]
		k := max(len(r.events), 1)
		if n > 0 && (size+k > w.d.cfg.groupEvents || bytes+r.size > w.d.cfg.groupBytes) {
			break
		}
		for i := range r.events {
			if id := r.events[i].ID; id != "" {
				if _, dup := ids[id]; dup {
					break scan
				}
			}
		}
		ids = r.addIDs(ids)
		size += k
		bytes += r.size
		n++
	}
	if n == 0 {
		w.mu.Unlock()
		return nil
	}
	taken := w.queue[:n:n]
	if n == len(w.queue) {
		w.queue = nil
	} else {
		w.queue = append([]*appendReq(nil), w.queue[n:]...)
	}
	w.mu.Unlock()

	out := make([]*appendReq, 0, len(taken))
	for _, r := range taken {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendResp{err: err}
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return []*appendReq{} // not nil: the queue may hold more
	}
	return out
}

// addIDs adds the IDs of r's events to ids, made when first needed, and
// returns it.
func (r *appendReq) addIDs(ids map[string]struct{}) map[string]struct{} {
	for i := range r.events {
		if id := r.events[i].ID; id != "" {
			if ids == nil {
				ids = make(map[string]struct{})
			}
			ids[id] = struct{}{}
		}
	}
	return ids
}

// close refuses new appends, fails the queued ones with ErrClosed and
// waits for the group being committed, if any, for at most timeout; then
// it cancels the group (cancel: its statement, and the group gets
// ErrClosed if it certainly stored nothing), waits at most timeout again
// for the look-up of its outcome, cancels that too (stop) and waits for
// the writer, which the cancelled calls let go at once (issue 9 item 4: a
// group waiting for a lock another session held kept Close blocked 20 s).
func (w *writer) close(timeout time.Duration, cancel, stop context.CancelFunc) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	pending := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, r := range pending {
		r.done <- appendResp{err: eventstore.ErrClosed}
	}
	close(w.stop)
	for _, c := range []context.CancelFunc{cancel, stop} {
		t := time.NewTimer(timeout)
		select {
		case <-w.done:
			t.Stop()
			return
		case <-t.C:
			c()
		}
	}
	<-w.done
}

// commitGroup appends a group in one statement (one round trip) and hands
// each caller its result.
//
// A group is never run again unless it certainly stored nothing. When the
// connection is lost before COMMIT's result arrives, the writer finds out
// from the group's outcome row (see lookupOutcome) what happened, and
// gives every caller the truth or, when that cannot be learnt,
// eventstore.ErrUnknownOutcome (issue 9: re-running such a group stored
// events without IDs twice, and answered Exact appends with conflicts for
// events that were stored).
func (d *pgDriver) commitGroup(group []*appendReq) {
	if len(group) == 0 {
		return
	}
	var (
		rows []groupRow
		oc   outcome
		err  error
	)
	// The listener and the poll wait while the group is sent and its
	// head recorded (see advanceHeadAfterCommit).
	//
	// It is not held during a look-up or a backoff, which can take
	// seconds: the listener then may record a head this group made
	// (harmless: the writer finds the head moved and reports a change
	// of unknown streams, which wakes every watcher).
	for attempt := 1; ; attempt++ {
		d.commitMu.Lock()
		token := d.tokens.Add(1)
		rows, oc, err = d.execGroup(d.bgCtx, group, token)
		if oc == unknown {
			d.commitMu.Unlock()
			rows, oc, err = d.resolveGroup(group, token, err)
			d.commitMu.Lock()
		}
		if oc != notWritten || attempt == maxAttempts || d.bgCtx.Err() != nil ||
			(!retryable(err) && !pgconn.SafeToRetry(err) && !connectionLost(err)) {
			break // holding commitMu
		}
		d.commitMu.Unlock()
		// A short backoff (5, 10, 20, 40 ms), so that a racing writer
		// or a connection being replaced gets time to move on.
		sleep(d.bgCtx, time.Duration(5<<(attempt-1))*time.Millisecond)
	}
	if oc != committed {
		d.commitMu.Unlock()
		d.failGroup(group, oc, err)
		return
	}
	d.groups.Add(1)
	var top, written uint64
	for i, row := range rows {
		top = max(top, row.position)
		if row.position > 0 {
			written += uint64(len(group[i].events) - len(row.dupIndex))
		}
	}
	if top > 0 {
		d.ownCommitted(top, written)
	}
	d.commitMu.Unlock()
	for i, r := range group {
		resp := rows[i].result(r)
		if resp.res.Appended > 0 {
			d.appends.Add(1)
			d.events.Add(uint64(resp.res.Appended))
		}
		r.done <- resp
	}
}

// failGroup answers the appends of a group that did not commit (oc
// notWritten) or whose outcome is unknown.
func (d *pgDriver) failGroup(group []*appendReq, oc outcome, err error) {
	switch {
	case oc == unknown:
		// err wraps eventstore.ErrUnknownOutcome.
	case d.bgCtx.Err() != nil:
		// Close cancelled the group before it committed.
		err = fmt.Errorf("postgres: append: %w", eventstore.ErrClosed)
	case len(group) > 1 && statementError(err):
		// Nothing was written and one append's statement failed. Run
		// each append alone so that the error reaches only the append
		// that caused it.
		for _, r := range group {
			d.commitGroup([]*appendReq{r})
		}
		return
	default:
		for _, r := range group {
			r.done <- appendResp{err: translateError(err, errCtx{op: "append", stream: r.stream, expected: r.expected})}
		}
		return
	}
	for _, r := range group {
		r.done <- appendResp{err: err}
	}
}

// groupRow is one row returned by append_batch.
type groupRow struct {
	status      int32
	version     int64
	position    uint64
	dupIndex    []int32
	dupVersion  []int64
	otherID     pgtype.Text
	otherStream pgtype.Text
}

const (
	statusOK       = 0
	statusConflict = 1
	statusIDInUse  = 2
	statusDeleted  = 3 // the stream is deleted (migrations/0007)
)

func (g *groupRow) result(r *appendReq) appendResp {
	switch g.status {
	case statusConflict:
		return appendResp{err: &eventstore.ConflictError{StreamID: r.stream, Expected: r.expected, Actual: uint64(g.version)}}
	case statusIDInUse:
		return appendResp{err: &eventstore.IdempotencyError{EventID: g.otherID.String, StreamID: r.stream, StoredIn: g.otherStream.String}}
	case statusDeleted:
		return appendResp{err: &eventstore.StreamDeletedError{StreamID: r.stream, Version: uint64(g.version)}}
	case statusOK:
	default:
		return appendResp{err: fmt.Errorf("postgres: append: unexpected status %d", g.status)}
	}
	res := eventstore.AppendResult{Version: uint64(g.version), Position: g.position}
	if len(g.dupIndex) > 0 {
		res.Duplicates = make([]eventstore.Duplicate, len(g.dupIndex))
		for i, idx := range g.dupIndex {
			res.Duplicates[i] = eventstore.Duplicate{Index: int(idx), ID: r.events[idx].ID, Version: uint64(g.dupVersion[i])}
		}
	}
	if g.position > 0 {
		res.Appended = len(r.events) - len(g.dupIndex)
	}
	return appendResp{res: res}
}

// groupArgs are the parameters of append_batch.
type groupArgs struct {
	anyIDs    bool
	dStream   []string
	dHash     []int64 // eventstore.StreamHash of each of dStream
	rSIdx     []int32
	rExpected []int64
	rCount    []int32
	eReq      []int32
	eID       []pgtype.Text
	eType     []string
	eData     [][]byte
	eMeta     [][]byte
	eTime     []pgtype.Timestamptz
}

func buildGroupArgs(group []*appendReq) (groupArgs, error) {
	total := 0
	for _, r := range group {
		total += len(r.events)
	}
	a := groupArgs{
		rSIdx:     make([]int32, len(group)),
		rExpected: make([]int64, len(group)),
		rCount:    make([]int32, len(group)),
		eReq:      make([]int32, 0, total),
		eID:       make([]pgtype.Text, 0, total),
		eType:     make([]string, 0, total),
		eData:     make([][]byte, 0, total),
		eMeta:     make([][]byte, 0, total),
		eTime:     make([]pgtype.Timestamptz, 0, total),
	}
	streamIdx := make(map[string]int32, len(group))
	for i, r := range group {
		si, ok := streamIdx[r.stream]
		if !ok {
			a.dStream = append(a.dStream, r.stream)
			a.dHash = append(a.dHash, int64(eventstore.StreamHash(r.stream)))
			si = int32(len(a.dStream)) // 1-based, as SQL arrays
			streamIdx[r.stream] = si
		}
		a.rSIdx[i] = si
		a.rExpected[i] = int64(r.expected)
		a.rCount[i] = int32(len(r.events))
		for j := range r.events {
			ev := &r.events[j]
			a.anyIDs = a.anyIDs || ev.ID != ""
			a.eReq = append(a.eReq, int32(i+1))
			a.eID = append(a.eID, pgtype.Text{String: ev.ID, Valid: ev.ID != ""})
			a.eType = append(a.eType, ev.Type)
			a.eData = append(a.eData, ev.Data)
			var meta []byte
			if len(ev.Metadata) > 0 {
				var err error
				if meta, err = json.Marshal(ev.Metadata); err != nil {
					return groupArgs{}, fmt.Errorf("postgres: append: encode metadata: %w", err)
				}
			}
			a.eMeta = append(a.eMeta, meta)
			a.eTime = append(a.eTime, pgtype.Timestamptz{Time: ev.Time, Valid: !ev.Time.IsZero()})
		}
	}
	return a, nil
}

// querier is what callAppend needs: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// execGroup runs append_batch for a group and returns one row per append,
// and what is known of the outcome when it fails. The call runs in a
// transaction of its own at READ COMMITTED, whatever the session's
// default_transaction_isolation: at REPEATABLE READ or SERIALIZABLE its
// reads would use the snapshot taken when the statement started, before
// it waited for the append lock, and miss the appends committed meanwhile
// (false conflicts for Any, duplicate positions). The BEGIN, the call and
// the COMMIT are sent as one pipelined batch: one round trip, as the bare
// statement took.
//
// Groups of several processes commit side by side (migrations/0011), so
// that their COMMITs share WAL flushes.
func (d *pgDriver) execGroup(ctx context.Context, group []*appendReq, token uint64) ([]groupRow, outcome, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, notWritten, err
	}
	defer conn.Release()
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, notWritten, err
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	// $17 false: the announcer sends the NOTIFY (see announce).
	b.Queue(d.q.appendCall, append(a.params(d, d.writerID, int64(token)), false)...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	if h := d.hooks; h != nil && h.sent != nil {
		h.sent(conn.Conn().PgConn())
	}
	out, beforeCommit, err := batchGroup(br, len(group))
	cerr := br.Close()
	if h := d.hooks; err == nil && h != nil && h.committed != nil {
		cerr = h.committed(conn.Conn().PgConn(), cerr)
	}
	if err == nil {
		// COMMIT's result arrived: the group is committed, whatever the
		// connection reports next (cerr). A backend terminated just after
		// the commit reports FATAL 57P01 here (issue 9 item 1); a test
		// injects that through the hook above.
		_ = cerr // deliberately not consulted
		return out, committed, nil
	}
	oc := unknown
	if pgconn.SafeToRetry(err) || (beforeCommit && statementError(err)) {
		oc = notWritten
	}
	// Failed inside the transaction: end it. If the outcome was unknown,
	// the group is now certainly not committed by this connection; the
	// look-up still decides.
	d.rollback(conn)
	return nil, oc, err
}

// rollback ends the transaction conn is in, if any, so that the connection
// goes back to the pool idle (the pool would otherwise drop it). It is
// bounded, so that a connection dying now cannot hold Close up.
func (d *pgDriver) rollback(conn *pgxpool.Conn) {
	if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(d.stopCtx, time.Second)
		_, _ = conn.Exec(rctx, "ROLLBACK")
		cancel()
	}
}

// batchGroup reads the results of execGroup's batch. Only a nil error
// means the group is committed. beforeCommit reports that the error came
// from the BEGIN or the call, before the COMMIT's result was awaited:
// with a server error there, the server skips the rest of the pipeline
// and the COMMIT never runs.
func batchGroup(br pgx.BatchResults, n int) (out []groupRow, beforeCommit bool, err error) {
	if _, err := br.Exec(); err != nil {
		return nil, true, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, true, err
	}
	out, err = scanGroup(rows, n)
	if err != nil {
		// A server error in the call is statementError; anything else
		// (a client-side scan failure) leaves the COMMIT queued on the
		// server, which runs it: not "before commit".
		return nil, statementError(err), err
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, false, err
	}
	if tag.String() != "COMMIT" {
		// COMMIT of a failed transaction answers ROLLBACK. A server
		// error would have come first, so this is defence in depth; the
		// look-up it leads to finds the group not committed.
		return nil, false, fmt.Errorf("postgres: append: COMMIT answered %q", tag)
	}
	return out, false, nil
}

// callAppend runs append_batch for a group through q, in q's transaction
// if it is one (tests).
func (d *pgDriver) callAppend(ctx context.Context, q querier, group []*appendReq) ([]groupRow, error) {
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, err
	}
	// No outcome row: the caller commits q's transaction and sees its
	// result.
	rows, err := q.Query(ctx, d.q.appendCall, append(a.params(d, "", 0), true)...) // $17: it notifies
	if err != nil {
		return nil, err
	}
	return scanGroup(rows, len(group))
}

// params returns the arguments of d.q.appendCall.
// An empty writer records no outcome row.
func (a *groupArgs) params(d *pgDriver, writer string, token int64) []any {
	return []any{pgtype.Text{String: writer, Valid: writer != ""}, token, d.lockKey, d.channel, a.anyIDs, a.dStream, a.dHash,
		a.rSIdx, a.rExpected, a.rCount, a.eReq, a.eID, a.eType, a.eData, a.eMeta, a.eTime}
}

// scanGroup reads append_batch's rows, one per append of the group. A nil
// error means the statement is done (and committed, when it ran in an
// implicit transaction of its own).
func scanGroup(rows pgx.Rows, n int) ([]groupRow, error) {
	out := make([]groupRow, 0, n)
	for rows.Next() {
		var g groupRow
		var pos int64
		if err := rows.Scan(&g.status, &g.version, &pos, &g.dupIndex, &g.dupVersion, &g.otherID, &g.otherStream); err != nil {
			rows.Close()
			return nil, err
		}
		g.position = uint64(pos)
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("postgres: append: %d results for %d appends", len(out), n)
	}
	return out, nil
}
