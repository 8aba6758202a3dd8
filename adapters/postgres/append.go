package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/eventstore"
)

// Append appends events to streamID if its version matches expected; see
// eventstore.Store.Append for the rules (idempotent retries, duplicates,
// empty batches). The append is handed to the store's writer, which
// commits it together with the appends other goroutines made meanwhile
// (group commit), each with its own checks and result.
//
// Errors: *eventstore.ValidationError before anything is sent;
// *eventstore.ConflictError; *eventstore.IdempotencyError;
// eventstore.ErrClosed; eventstore.ErrUnknownOutcome when the connection
// was lost while the append committed and its outcome could not be
// looked up (see doc.go, "Connection faults while committing"). If ctx ends while the append waits in the queue it
// is dropped and ctx's error returned; if ctx ends while it is being
// committed, ctx's error is returned and the append may or may not have
// been stored (as with any database call): retry it with the same event
// IDs to find out. In that case the writer may still be reading events
// after Append returned, so do not modify their Data or Metadata then.
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.ValidateAppend(streamID, expected, events, s.cfg.maxEventSize); err != nil {
		return eventstore.AppendResult{}, err
	}
	size := appendSize(streamID, events)
	if size > s.cfg.maxAppend {
		return eventstore.AppendResult{}, &eventstore.ValidationError{Field: "events", Index: -1,
			Reason: fmt.Sprintf("%d bytes in all is over the limit of %d per append (WithMaxAppendSize): split the batch", size, s.cfg.maxAppend)}
	}
	req := &appendReq{ctx: ctx, stream: streamID, expected: expected, events: events, size: size, done: make(chan appendResp, 1)}
	if err := s.writer.submit(req); err != nil {
		return eventstore.AppendResult{}, err
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		req.state.CompareAndSwap(reqQueued, reqAbandoned)
		return eventstore.AppendResult{}, ctx.Err()
	}
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.Event
	size     int // appendSize
	state    atomic.Int32
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
type writer struct {
	s      *Store
	mu     sync.Mutex
	queue  []*appendReq
	closed bool
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

func newWriter(s *Store) *writer {
	return &writer{s: s, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
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
			w.s.commitGroup(group)
		}
	}
}

// take removes the next group from the queue: nil when the queue is
// empty. A group holds at most cfg.groupEvents events and cfg.groupBytes
// bytes of payload (one larger append goes alone) and no event ID twice: append_batch checks stored IDs once
// per group, so an ID shared by two appends sends the second to the next
// group. Appends whose caller gave up are dropped.
func (w *writer) take() []*appendReq {
	w.mu.Lock()
	n, size, bytes := 0, 0, 0
	var ids map[string]struct{}
scan:
	for n < len(w.queue) {
		r := w.queue[n]
		k := max(len(r.events), 1)
		if n > 0 && (size+k > w.s.cfg.groupEvents || bytes+r.size > w.s.cfg.groupBytes) {
			break
		}
		for i := range r.events {
			if id := r.events[i].ID; id != "" {
				if _, dup := ids[id]; dup {
					break scan
				}
			}
		}
		for i := range r.events {
			if id := r.events[i].ID; id != "" {
				if ids == nil {
					ids = make(map[string]struct{})
				}
				ids[id] = struct{}{}
			}
		}
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

	group := make([]*appendReq, 0, len(taken))
	for _, r := range taken {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- appendResp{err: err}
			continue
		}
		group = append(group, r)
	}
	if len(group) == 0 {
		return []*appendReq{} // not nil: the queue may hold more
	}
	return group
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
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			r.done <- appendResp{err: eventstore.ErrClosed}
		}
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

// maxAttempts bounds the runs of a group that certainly stored nothing
// and failed for a reason another run may not meet: a concurrent writer
// (see retryable) or a lost connection.
const maxAttempts = 5

// outcome is what the writer knows of a group it tried to commit.
type outcome int

const (
	// notWritten: the group certainly stored nothing. It failed before it
	// was sent, or the server refused one of its statements before COMMIT
	// (the rest of the pipeline is then skipped).
	notWritten outcome = iota
	// committed: COMMIT's result arrived, or the outcome row says so.
	committed
	// unknown: the connection failed after the group was sent and before
	// COMMIT's result arrived, and it is not known (yet) whether the group
	// committed.
	unknown
)

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
func (s *Store) commitGroup(group []*appendReq) {
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
	// (harmless: the writer finds the head moved and wakes every
	// watcher instead of the group's).
	for attempt := 1; ; attempt++ {
		s.commitMu.Lock()
		token := s.tokens.Add(1)
		rows, oc, err = s.execGroup(s.bgCtx, group, token)
		if oc == unknown {
			s.commitMu.Unlock()
			rows, oc, err = s.resolveGroup(group, token, err)
			s.commitMu.Lock()
		}
		if oc != notWritten || attempt == maxAttempts || s.bgCtx.Err() != nil ||
			(!retryable(err) && !pgconn.SafeToRetry(err) && !connectionLost(err)) {
			break // holding commitMu
		}
		s.commitMu.Unlock()
		// A short backoff (5, 10, 20, 40 ms), so that a racing writer
		// or a connection being replaced gets time to move on.
		sleep(s.bgCtx, time.Duration(5<<(attempt-1))*time.Millisecond)
	}
	if oc != committed {
		s.commitMu.Unlock()
		s.failGroup(group, oc, err)
		return
	}
	s.groups.Add(1)
	var top, written uint64
	var streams []string
	for i, row := range rows {
		top = max(top, row.position)
		if row.position > 0 {
			written += uint64(len(group[i].events) - len(row.dupIndex))
			streams = append(streams, group[i].stream)
		}
	}
	if top > 0 {
		prev := s.head.Load()
		s.advanceHead(top)
		if prev+written == top {
			// Positions are gapless and in commit order: nothing
			// committed since the head watchers were last woken for but
			// this group, so only its streams' watchers (and those of
			// AllStreams) have news.
			s.notifiers.Notify(streams)
		} else {
			// Another process committed just before: its streams are
			// unknown here.
			s.notifiers.NotifyAll()
		}
	}
	s.commitMu.Unlock()
	for i, r := range group {
		resp := rows[i].result(r)
		if resp.res.Appended > 0 {
			s.appends.Add(1)
			s.events.Add(uint64(resp.res.Appended))
		}
		r.done <- resp
	}
}

// failGroup answers the appends of a group that did not commit (oc
// notWritten) or whose outcome is unknown.
func (s *Store) failGroup(group []*appendReq, oc outcome, err error) {
	switch {
	case oc == unknown:
		// err wraps eventstore.ErrUnknownOutcome.
	case s.bgCtx.Err() != nil:
		// Close cancelled the group before it committed.
		err = fmt.Errorf("postgres: append: %w", eventstore.ErrClosed)
	case len(group) > 1 && statementError(err):
		// Nothing was written and one append's statement failed. Run
		// each append alone so that the error reaches only the append
		// that caused it.
		for _, r := range group {
			s.commitGroup([]*appendReq{r})
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

// sleep waits for d or until ctx ends, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// resolveGroup learns the outcome of a group whose connection failed
// after it was sent (cause): committed with its rows, notWritten (then
// it is fenced and may run again), or, when the database cannot be asked
// within cfg.resolveTimeout or the store is closing, unknown with an
// error wrapping eventstore.ErrUnknownOutcome and cause.
func (s *Store) resolveGroup(group []*appendReq, token uint64, cause error) ([]groupRow, outcome, error) {
	s.outcomeChecks.Add(1)
	// Not bgCtx: Close cancels that first, and a group it cancelled
	// still deserves its true outcome (within Close's bound).
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.resolveTimeout)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		rows, done, err := s.lookupOutcome(ctx, token, len(group))
		if err == nil && done {
			return rows, committed, nil
		}
		if err == nil {
			return nil, notWritten, cause
		}
		last = err
		// 10, 20, 40 ... ms, at most 500 ms apart, until the bound.
		if !sleep(ctx, min(time.Duration(10<<min(attempt, 6))*time.Millisecond, 500*time.Millisecond)) {
			break
		}
	}
	s.unknownOutcomes.Add(1)
	return nil, unknown, fmt.Errorf("postgres: append: %w: the connection failed while it committed (%w), and its outcome could not be looked up: %w",
		eventstore.ErrUnknownOutcome, cause, last)
}

// lookupOutcome reports whether the group with token committed, with its
// rows, on a connection of its own. It first fences the token: if the
// group has not written its outcome row yet (it may still be running on
// a connection the client gave up on), the row now holds the token with
// no results, and the group fails at its own upsert and rolls back (see
// migrations/0003). If the group wrote its row but has not finished, the
// upsert waits for it. Both statements are idempotent, so a look-up that
// fails half-way is simply run again.
func (s *Store) lookupOutcome(ctx context.Context, token uint64, n int) ([]groupRow, bool, error) {
	if _, err := s.pool.Exec(ctx, s.q.fenceOutcome, s.writerID, int64(token)); err != nil {
		return nil, false, err
	}
	var (
		got                 int64
		statuses            []int32
		versions, positions []int64
		extras              pgtype.Text
	)
	err := s.pool.QueryRow(ctx, s.q.readOutcome, s.writerID).Scan(&got, &statuses, &versions, &positions, &extras)
	if err != nil {
		return nil, false, err
	}
	if got != int64(token) {
		return nil, false, fmt.Errorf("postgres: append: outcome row of writer %s holds group %d, want %d", s.writerID, got, token)
	}
	if statuses == nil {
		return nil, false, nil // fenced: the group did not commit and never will
	}
	var ex []json.RawMessage
	if extras.Valid {
		if err := json.Unmarshal([]byte(extras.String), &ex); err != nil {
			return nil, false, fmt.Errorf("postgres: append: outcome row: %w", err)
		}
	}
	if len(statuses) != n || len(versions) != n || len(positions) != n || len(ex) != n {
		return nil, false, fmt.Errorf("postgres: append: outcome row of group %d holds %d results for %d appends", token, len(statuses), n)
	}
	rows := make([]groupRow, n)
	for i := range rows {
		g := &rows[i]
		g.status, g.version, g.position = statuses[i], versions[i], uint64(positions[i])
		if len(ex[i]) == 0 || string(ex[i]) == "null" {
			continue
		}
		// [dup_index, dup_version, other_id, other_stream], as written
		// by append_batch.
		var parts []json.RawMessage
		var otherID, otherStream *string
		err := json.Unmarshal(ex[i], &parts)
		if err == nil && len(parts) != 4 {
			err = fmt.Errorf("%d fields, want 4", len(parts))
		}
		if err == nil {
			err = errors.Join(json.Unmarshal(parts[0], &g.dupIndex), json.Unmarshal(parts[1], &g.dupVersion),
				json.Unmarshal(parts[2], &otherID), json.Unmarshal(parts[3], &otherStream))
		}
		if err != nil {
			return nil, false, fmt.Errorf("postgres: append: outcome row of group %d: %w", token, err)
		}
		if otherID != nil {
			g.otherID = pgtype.Text{String: *otherID, Valid: true}
		}
		if otherStream != nil {
			g.otherStream = pgtype.Text{String: *otherStream, Valid: true}
		}
	}
	return rows, true, nil
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
)

func (g *groupRow) result(r *appendReq) appendResp {
	switch g.status {
	case statusConflict:
		return appendResp{err: &eventstore.ConflictError{StreamID: r.stream, Expected: r.expected, Actual: uint64(g.version)}}
	case statusIDInUse:
		return appendResp{err: &eventstore.IdempotencyError{EventID: g.otherID.String, StreamID: r.stream, StoredIn: g.otherStream.String}}
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
func (s *Store) execGroup(ctx context.Context, group []*appendReq, token uint64) ([]groupRow, outcome, error) {
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, notWritten, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, notWritten, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q.appendCall, a.params(s, s.writerID, int64(token))...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	if h := s.hooks; h != nil && h.sent != nil {
		h.sent(conn.Conn().PgConn())
	}
	out, beforeCommit, err := batchGroup(br, len(group))
	cerr := br.Close()
	if h := s.hooks; err == nil && h != nil && h.committed != nil {
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
	if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
		// Failed inside the transaction: end it, so that the
		// connection goes back to the pool idle (the pool would
		// otherwise drop it). If the outcome was unknown, the group
		// is now certainly not committed by this connection; the
		// look-up still decides.
		// Bounded, so that a connection dying now cannot hold Close up.
		rctx, cancel := context.WithTimeout(s.stopCtx, time.Second)
		_, _ = conn.Exec(rctx, "ROLLBACK")
		cancel()
	}
	return nil, oc, err
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

// statementError reports whether err is the server refusing a statement
// (severity ERROR): the server's session goes on, and in a transaction
// everything the statement did is undone. FATAL and PANIC end the
// session, and are not statement errors.
func statementError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	sev := pgErr.SeverityUnlocalized
	if sev == "" {
		sev = pgErr.Severity
	}
	return sev == "ERROR"
}

// callAppend runs append_batch for a group through q, in q's transaction
// if it is one (tests).
func (s *Store) callAppend(ctx context.Context, q querier, group []*appendReq) ([]groupRow, error) {
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, err
	}
	// No outcome row: the caller commits q's transaction and sees its
	// result.
	rows, err := q.Query(ctx, s.q.appendCall, a.params(s, "", 0)...)
	if err != nil {
		return nil, err
	}
	return scanGroup(rows, len(group))
}

// params returns the arguments of s.q.appendCall.
// An empty writer records no outcome row.
func (a *groupArgs) params(s *Store, writer string, token int64) []any {
	return []any{pgtype.Text{String: writer, Valid: writer != ""}, token, s.lockKey, s.channel, a.anyIDs, a.dStream,
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
