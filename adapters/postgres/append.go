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
// eventstore.ErrClosed. If ctx ends while the append waits in the queue it
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
// waits for the group being committed, if any.
func (w *writer) close() {
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
	<-w.done
}

// maxAttempts bounds the retries of a group refused because of a
// concurrent writer (see retryable).
const maxAttempts = 5

// commitGroup appends a group in one statement (one round trip) and hands
// each caller its result.
func (s *Store) commitGroup(group []*appendReq) {
	if len(group) == 0 {
		return
	}
	var (
		rows []groupRow
		err  error
	)
	// The listener and the poll wait while the group is sent and its
	// head recorded (see advanceHeadAfterCommit).
	s.commitMu.Lock()
	for attempt := 1; ; attempt++ {
		rows, err = s.execGroup(s.bgCtx, group)
		if err == nil || !(retryable(err) || pgconn.SafeToRetry(err)) || attempt == maxAttempts {
			break
		}
		// A short backoff (5, 10, 20, 40 ms), so that a racing writer
		// or a connection being replaced gets time to move on.
		t := time.NewTimer(time.Duration(5<<(attempt-1)) * time.Millisecond)
		select {
		case <-t.C:
		case <-s.bgCtx.Done():
			t.Stop()
		}
	}
	if err != nil {
		s.commitMu.Unlock()
		if len(group) > 1 && rolledBack(err) {
			// Nothing was written. Run each append alone so that the
			// error reaches only the append that caused it.
			for _, r := range group {
				s.commitGroup([]*appendReq{r})
			}
			return
		}
		// Either one append failed, or the outcome is unknown (the
		// connection broke after the statement was sent: it may have
		// committed). Running the appends again could store events
		// without IDs twice, so every caller gets the error.
		for _, r := range group {
			r.done <- appendResp{err: translateError(err, errCtx{op: "append", stream: r.stream, expected: r.expected})}
		}
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

// execGroup runs append_batch for a group and returns one row per append.
// The call runs in a transaction of its own at READ COMMITTED, whatever
// the session's default_transaction_isolation: at REPEATABLE READ or
// SERIALIZABLE its reads would use the snapshot taken when the statement
// started, before it waited for the append lock, and miss the appends
// committed meanwhile (false conflicts for Any, duplicate positions). The
// BEGIN, the call and the COMMIT are sent as one pipelined batch: one
// round trip, as the bare statement took.
func (s *Store) execGroup(ctx context.Context, group []*appendReq) ([]groupRow, error) {
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q.appendCall, a.params(s)...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	out, err := batchGroup(br, len(group))
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			// Failed inside the transaction: end it, so that the
			// connection goes back to the pool idle (the pool would
			// otherwise drop it).
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return nil, err
	}
	return out, nil
}

// batchGroup reads the results of execGroup's batch. Only a nil error
// from the COMMIT means the group is committed.
func batchGroup(br pgx.BatchResults, n int) ([]groupRow, error) {
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	out, err := scanGroup(rows, n)
	if err != nil {
		return nil, err
	}
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	return out, nil
}

// callAppend runs append_batch for a group through q, in q's transaction
// if it is one (tests).
func (s *Store) callAppend(ctx context.Context, q querier, group []*appendReq) ([]groupRow, error) {
	a, err := buildGroupArgs(group)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, s.q.appendCall, a.params(s)...)
	if err != nil {
		return nil, err
	}
	return scanGroup(rows, len(group))
}

// params returns the arguments of s.q.appendCall.
func (a *groupArgs) params(s *Store) []any {
	return []any{s.lockKey, s.channel, a.anyIDs, a.dStream,
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

// rolledBack reports whether a failed append statement certainly wrote
// nothing: the server reported an error (the statement's implicit
// transaction then rolls back), or pgx failed before sending it.
func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || pgconn.SafeToRetry(err)
}
