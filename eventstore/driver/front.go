package driver

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
	"github.com/esv2/esv2/internal/watch"
)

// ErrConnectionLost marks a driver error caused by a lost connection to the
// database (a terminated backend, a restart, a network cut): a read that
// failed with it can be run again on a new connection. A driver wraps it
// into such errors; the front then retries a watch's page instead of
// ending the watch.
var ErrConnectionLost = errors.New("driver: connection to the database lost")

// Read pages start small, so that a loop that breaks early (reading the
// last event backwards, say) fetches little, and grow fourfold up to
// Config.MaxPageRows.
const (
	firstPageRows   = 64
	defaultPageRows = 1024
)

// Watches retry a page whose connection was lost this many times,
// waiting watchRetryDelay, doubling up to watchRetryMaxDelay, between
// attempts: about 12 s in all before the watch ends with the error. The
// page is read again from the same key, so the retry can neither skip nor
// repeat.
const (
	watchRetries       = 10
	watchRetryDelay    = 50 * time.Millisecond
	watchRetryMaxDelay = 2 * time.Second
)

// Front is the one implementation of [eventstore.Store], over a [Driver].
// Adapters return it (embedded in their own Store type, beside their
// database-specific methods) from their Open functions. It is safe for
// concurrent use.
//
// Every method checks, in this order: a nil context (a
// *eventstore.ValidationError), an ended context (its error), a closed store
// (eventstore.ErrClosed), then its arguments (a *eventstore.ValidationError);
// only then does it call the driver. Reads and watches make the same checks
// when they are called, and yield the error as their only element.
type Front struct {
	d       Driver
	finder  EventFinder  // nil when the driver has no such ability
	deleter Deleter      // nil when the driver has no such ability
	locker  StreamLocker // nil when the driver has no such ability
	// partitions: the driver applies Filter.Partitions (PartitionReader).
	partitions bool
	cfg        Config
	hub        *watch.Hub

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ eventstore.Store        = (*Front)(nil)
	_ eventstore.Lifecycle    = (*Front)(nil)
	_ eventstore.StreamLocker = (*Front)(nil)
)

// New returns the front over d. If d is a [Listener], New calls its Listen
// before it returns.
func New(d Driver, cfg Config) *Front {
	if cfg.MaxEventSize <= 0 {
		cfg.MaxEventSize = eventstore.DefaultMaxEventSize
	}
	if cfg.MaxPageRows <= 0 {
		cfg.MaxPageRows = defaultPageRows
	}
	f := &Front{d: d, cfg: cfg, hub: watch.NewHub()}
	f.finder, _ = d.(EventFinder)
	f.deleter, _ = d.(Deleter)
	f.locker, _ = d.(StreamLocker)
	if pr, ok := d.(PartitionReader); ok {
		f.partitions = pr.ReadsPartitions()
	}
	if l, ok := d.(Listener); ok {
		l.Listen(notices{f.hub})
	}
	return f
}

// notices passes a driver's news to the hub.
type notices struct{ hub *watch.Hub }

func (n notices) Appended(streamIDs ...string) { n.hub.Notify(streamIDs) }
func (n notices) Changed()                     { n.hub.NotifyAll() }

// check makes the checks every call starts with.
func (f *Front) check(ctx context.Context) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	if f.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// Stream returns a handle on stream id.
func (f *Front) Stream(id string) *eventstore.Stream { return eventstore.NewStream(f, id) }

// Append appends events to a stream; see [eventstore.Store.Append]. An empty
// batch checks the expectation against the stream's version and writes
// nothing. The driver's watchers of the stream (and of AllStreams) are woken
// once the append has committed.
//
// The metadata of ctx ([eventstore.WithMetadata]) is added to each event's,
// the event's own keys winning.
//
// Cancellation: if ctx ends while the append waits to be taken, nothing is
// written and Append returns ctx's error; once the store has sent it to the
// database, Append returns its real outcome, even if ctx has ended
// meanwhile (or eventstore.ErrUnknownOutcome, see there). An error from
// Append other than ErrUnknownOutcome therefore means nothing was written.
func (f *Front) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if err := f.check(ctx); err != nil {
		return eventstore.AppendResult{}, err
	}
	if md := eventstore.MetadataFrom(ctx); md != nil {
		// Before validation: the merged metadata counts towards an
		// event's size.
		events = eventstore.MergeMetadata(events, md)
	}
	if err := validate.Append(streamID, expected, events, f.cfg.MaxEventSize); err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(events) == 0 {
		v, err := f.emptyAppendHead(ctx, streamID)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if !expected.Matches(v) {
			return eventstore.AppendResult{}, &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: v}
		}
		return eventstore.AppendResult{Version: v}, nil
	}
	res, err := f.d.Append(ctx, &Batch{StreamID: streamID, Expected: expected, Events: events})
	// An unknown outcome may have committed: a wake that finds nothing
	// costs a watcher one read, a missed one an event delivered late.
	if (err == nil && res.Appended > 0 && !f.cfg.OwnNotices) || errors.Is(err, eventstore.ErrUnknownOutcome) {
		f.hub.Notify([]string{streamID})
	}
	if err != nil && f.cfg.Logger != nil {
		f.logAppend(ctx, streamID, expected, len(events), err)
	}
	if err == nil && res.Position == 0 && len(res.Duplicates) > 0 {
		// A pure retry: the driver wrote nothing, and may not know where
		// the batch's events are. A caller waiting for its read model to
		// reach its write needs it (issue 14: read-your-writes), so look
		// up the last of them, one page of one event by its version.
		if res.Position, err = f.duplicatePosition(ctx, streamID, res.Duplicates); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("eventstore: append: a retry's events are stored, their position could not be read: %w", err)
		}
	}
	return res, err
}

// logAppend tells the logger of a failed append: a conflict at Debug (it
// is routine: the caller reloads and retries), an unknown outcome at Warn,
// a database error at Error; invalid input, a closed store and the
// caller's own context are the caller's news, not logged.
func (f *Front) logAppend(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, n int, err error) {
	var conflict *eventstore.ConflictError
	switch {
	case errors.As(err, &conflict):
		f.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "esv2: append conflict",
			slog.String("stream", streamID), slog.String("expected", expected.String()),
			slog.Uint64("actual", conflict.Actual), slog.Int("events", n))
	case errors.Is(err, eventstore.ErrUnknownOutcome):
		f.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "esv2: append outcome unknown",
			slog.String("stream", streamID), slog.Int("events", n), slog.String("error", err.Error()))
	case errors.Is(err, eventstore.ErrInvalidInput), errors.Is(err, eventstore.ErrIdempotency),
		errors.Is(err, eventstore.ErrClosed), ctx.Err() != nil:
	default:
		f.cfg.Logger.LogAttrs(ctx, slog.LevelError, "esv2: append failed",
			slog.String("stream", streamID), slog.Int("events", n), slog.String("error", err.Error()))
	}
}

// duplicatePosition returns the global position of the highest version
// among dups, events of streamID, or 0 when it is no longer stored.
func (f *Front) duplicatePosition(ctx context.Context, streamID string, dups []eventstore.Duplicate) (uint64, error) {
	var v uint64
	for _, d := range dups {
		v = max(v, d.Version)
	}
	page, err := f.d.ReadPage(ctx, &Query{StreamID: streamID}, Range{From: v, To: v, Limit: 1}, nil)
	if err != nil {
		return 0, err
	}
	if len(page) != 1 || page[0].Version != v {
		// Deleted since (truncated, say): the batch's events no longer
		// exist, and the retry still succeeds.
		return 0, nil
	}
	return page[0].Position, nil
}

// emptyAppendHead is the version an empty append checks its expectation
// against; a deleted stream refuses it, as it refuses any append.
func (f *Front) emptyAppendHead(ctx context.Context, streamID string) (uint64, error) {
	if f.deleter == nil {
		return f.d.Head(ctx, streamID)
	}
	info, err := f.d.Info(ctx, streamID)
	if err != nil {
		return 0, err
	}
	if info.Deleted {
		return 0, &eventstore.StreamDeletedError{StreamID: streamID, Version: info.Version}
	}
	return info.Version, nil
}

// Read streams events; see [eventstore.Store.Read]. It reads pages by key
// (version or position), each a call of its own, so no connection or lock
// is held while the loop body runs, and each page ends at its row limit or
// at eventstore.PageBytes. Errors (yielded once): *eventstore.ValidationError,
// eventstore.ErrClosed, a context error, or the driver's error.
func (f *Front) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := f.check(ctx); err != nil {
		return watch.ErrorSeq(err)
	}
	if err := validate.Filter(streamID, opts.Filter); err != nil {
		return watch.ErrorSeq(err)
	}
	if opts.Limit < 0 {
		return watch.ErrorSeq(&eventstore.ValidationError{Field: "limit", Index: -1, Reason: fmt.Sprintf("%d is negative", opts.Limit)})
	}
	if opts.Omit&^eventstore.AllFields != 0 {
		return watch.ErrorSeq(&eventstore.ValidationError{Field: "omit", Index: -1, Reason: fmt.Sprintf("%#x has bits that name no field", uint8(opts.Omit))})
	}
	after, fromEnd := opts.From.Cursor()
	if !opts.Backwards && (fromEnd || after >= math.MaxInt64) {
		// From is a bound: past the end, or past every key a store can
		// hold, forwards there is nothing to read.
		return func(func(eventstore.Recorded, error) bool) {}
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		// The state of one iteration, made when it begins: an iterator
		// ranged twice, or by two goroutines, shares none of it (drivers
		// keep per-read state in the Query).
		r := &reader{f: f, ctx: ctx, opts: opts, q: &Query{StreamID: streamID, Filter: opts.Filter, Backwards: opts.Backwards, Omit: opts.Omit}}
		r.run(yield)
	}
}

// reader is the state of one Read.
type reader struct {
	f    *Front
	ctx  context.Context
	opts eventstore.ReadOptions
	q    *Query
}

// fetched is a page read ahead, and whether pages follow it.
type fetched struct {
	page []eventstore.Recorded
	more bool
	err  error
}

// pager is where a Read's next page starts, and how large it is.
type pager struct {
	rng             Range
	size, remaining int // rows of the next page before the limit; rows left of opts.Limit
	limit, maxRows  int // opts.Limit; Config.MaxPageRows
	backwards       bool
	streamID        string
}

// next returns the range of the next page and grows the size of the one
// after it.
func (p *pager) next() Range {
	rng := p.rng
	rng.Limit = p.size
	p.size = min(p.size*4, p.maxRows)
	if p.limit > 0 && p.remaining < rng.Limit {
		rng.Limit = p.remaining
	}
	return rng
}

// advance moves p past page, read at rng, and reports whether pages may
// follow it.
func (p *pager) advance(page []eventstore.Recorded, rng Range) bool {
	more := watch.PageFull(page, rng.Limit)
	if p.limit > 0 {
		if p.remaining -= len(page); p.remaining == 0 {
			more = false
		}
	}
	if !more {
		return false
	}
	last := key(p.streamID, page[len(page)-1])
	switch {
	case p.backwards && last <= 1, !p.backwards && last >= math.MaxInt64:
		return false
	case p.backwards:
		p.rng.To = last - 1
	default:
		p.rng.From = last + 1
	}
	return true
}

func (r *reader) run(yield func(eventstore.Recorded, error) bool) {
	opts := r.opts
	after, fromEnd := opts.From.Cursor()
	rng := Range{From: after + 1, To: math.MaxInt64} // after < MaxInt64: see Read
	if opts.Backwards {
		rng = Range{From: 1, To: math.MaxInt64}
		if after > 0 && !fromEnd {
			if after == 1 {
				return // nothing before the first key
			}
			rng.To = min(after-1, math.MaxInt64)
		}
	}
	if u := opts.Until; u > 0 {
		if opts.Backwards {
			rng.From = max(rng.From, u)
		} else {
			rng.To = min(rng.To, u)
		}
		if rng.From > rng.To {
			return
		}
	}
	p := &pager{rng: rng, remaining: opts.Limit, limit: opts.Limit, maxRows: r.f.cfg.MaxPageRows,
		backwards: opts.Backwards, streamID: r.q.StreamID}
	p.size = min(firstPageRows, p.maxRows)
	if opts.Limit > p.size {
		// The caller said how many it wants: one page of them, not a
		// small one and then the rest (a subscription's batch of 100
		// cost two queries).
		p.size = min(opts.Limit, p.maxRows)
	}
	var page []eventstore.Recorded
	for {
		rng := p.next()
		var err error
		page, err = r.f.readPage(r.ctx, r.q, rng, page[:0])
		if err != nil {
			yield(eventstore.Recorded{}, err)
			return
		}
		more := p.advance(page, rng)
		if more && r.f.cfg.ReadAhead && rng.Limit >= p.maxRows/4 && unselective(opts.Filter) {
			r.ahead(p, page, yield)
			return
		}
		for _, e := range page {
			if !yield(e, nil) {
				return
			}
		}
		if !more {
			return
		}
		// The array is reused for the next page, which may be shorter:
		// it must not keep this page's events alive.
		clear(page)
	}
}

// ahead yields page and the pages after it, which a goroutine of its own
// reads while the loop body runs, up to two pages ahead (Config.ReadAhead,
// from the first large page of an unfiltered read on: with a selective
// filter the next page is a scan that a loop which breaks would have to
// wait for), so that the database and the consumer work at the same time:
// with one page ahead, the database sat idle whenever the loop body took
// longer over a page than it over the next (a tenth of a
// cmd/esbench load_aggregate on PostgreSQL). A loop that breaks waits for
// the fetch under way rather than cancel it: canceling a query can cost a
// pool its connection. p belongs to the goroutine.
func (r *reader) ahead(p *pager, page []eventstore.Recorded, yield func(eventstore.Recorded, error) bool) {
	// ch holds the page read ahead that the loop body has not reached;
	// the goroutine reads the one after it meanwhile. free returns
	// arrays the loop body is done with: one allocated per page (4,096
	// events of 160 bytes, zeroed, then collected) was a tenth of a
	// catch-up's CPU time in madvise alone.
	ch := make(chan fetched, 1)
	free := make(chan []eventstore.Recorded, 2)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			var into []eventstore.Recorded
			select {
			case into = <-free:
			default:
			}
			rng := p.next()
			got, err := r.f.readPage(r.ctx, r.q, rng, into)
			more := err == nil && p.advance(got, rng)
			select {
			case ch <- fetched{page: got, more: more, err: err}:
			case <-stop:
				return
			}
			if !more {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	for {
		for _, e := range page {
			if !yield(e, nil) {
				return
			}
		}
		// The loop body has copied what it keeps: events are values.
		clear(page)
		select {
		case free <- page[:0]:
		default:
		}
		got := <-ch
		if got.err != nil {
			yield(eventstore.Recorded{}, got.err)
			return
		}
		page = got.page
		if !got.more {
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			return
		}
	}
}

// unselective reports whether f keeps most events: no condition, or only a
// share of partitions of at least a quarter (a group member's).
func unselective(f eventstore.Filter) bool {
	p := f.Partitions
	f.Partitions = eventstore.Partitions{}
	return f.IsZero() && (p.Count == 0 || len(p.Of)*4 >= p.Count)
}

// key returns the cursor of an event: its version in a stream, its
// position in AllStreams.
func key(streamID string, e eventstore.Recorded) uint64 {
	if streamID == eventstore.AllStreams {
		return e.Position
	}
	return e.Version
}

// Watch yields the events of a stream (or AllStreams) after opts.From, first
// those stored, then live ones, in order, each once, until ctx ends (the
// iteration just stops) or the store is closed (it yields
// eventstore.ErrClosed); see [eventstore.Store.Watch].
//
// Every watcher of the store waits on one hub (a notifier for AllStreams and
// one per watched stream), woken by the front's own appends and by the
// driver's notices of others' (see [Listener]). A watcher catches up with
// ReadPage by itself; at the head it follows the shared tail of its stream
// (or of AllStreams): one ReadPage per change, whatever the number of
// watchers at the head, each applying its filter to that page in memory; a
// watcher that falls behind the tail's bounded window reads alone again.
// No connection is held while a watcher waits. A page that fails with
// [ErrConnectionLost] is read again, from the same key, after a pause.
func (f *Front) Watch(ctx context.Context, streamID string, opts eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := f.check(ctx); err != nil {
		return watch.ErrorSeq(err)
	}
	if err := validate.Filter(streamID, opts.Filter); err != nil {
		return watch.ErrorSeq(err)
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		q := &Query{StreamID: streamID, Filter: opts.Filter, Watch: true} // one per iteration, as in Read
		after, fromEnd := opts.From.Cursor()
		if fromEnd {
			var err error
			if after, err = f.d.Head(ctx, streamID); err != nil {
				if ctx.Err() == nil {
					yield(eventstore.Recorded{}, err)
				}
				return
			}
		}
		var buf []eventstore.Recorded
		read := func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error) {
			var err error
			buf, err = f.readRetrying(ctx, q, Range{From: lo, To: hi, Limit: limit}, buf[:0])
			return buf, err
		}
		page := func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
			if after >= math.MaxInt64 {
				// No key can pass it: the watch waits, as every watch
				// does, until its context ends or Close.
				return nil, nil
			}
			return read(ctx, after+1, math.MaxInt64, limit)
		}
		var scanned func() uint64
		var match func(eventstore.Recorded) bool
		if !opts.Filter.IsZero() {
			// Drivers allocate keys in commit order (see Driver.Head).
			b := watch.NewBounded(func(ctx context.Context) (uint64, error) {
				return f.headRetrying(ctx, streamID)
			}, read)
			page, scanned = b.Page, b.Scanned
			filter := opts.Filter
			match = func(e eventstore.Recorded) bool { return watch.Match(filter, e) }
		}
		n, tail, release := f.hub.Join(streamID, func() watch.TailSource { return f.tailSource(streamID) })
		defer release()
		k := func(e eventstore.Recorded) uint64 { return key(streamID, e) }
		for e, err := range watch.FollowTail(ctx, n, tail, after, page, scanned, match, k, min(watch.FollowPageSize, f.cfg.MaxPageRows)) {
			if !yield(e, err) {
				return
			}
		}
	}
}

// tailSource is how the shared tail of streamID's watchers (see
// watch.Tail) reads: every event, with the retries of a watch's pages.
func (f *Front) tailSource(streamID string) watch.TailSource {
	return watch.TailSource{
		Head: func(ctx context.Context) (uint64, error) { return f.headRetrying(ctx, streamID) },
		NewRead: func() watch.PageFunc {
			q := &Query{StreamID: streamID, Watch: true} // one per run: the driver may keep state in it
			return func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
				if after >= math.MaxInt64 {
					return nil, nil
				}
				// A page of its own each time: the tail's watchers keep
				// reading the last ones.
				return f.readRetrying(ctx, q, Range{From: after + 1, To: math.MaxInt64, Limit: limit}, nil)
			}
		},
		Key:  func(e eventstore.Recorded) uint64 { return key(streamID, e) },
		Size: min(watch.FollowPageSize, f.cfg.MaxPageRows),
	}
}

// Changes lets a consumer that reads for itself (a subscription) wait for
// appends the way watchers do: changed returns a channel closed at the next
// append to streamID (to any stream, for eventstore.AllStreams) that the
// store learns of, its own or another process's, or when the store closes.
// Take the channel before reading what is new and wait on it afterwards, so
// that no append slips between the two. Call release when done.
func (f *Front) Changes(streamID string) (changed func() <-chan struct{}, release func()) {
	n, release := f.hub.Watch(streamID)
	return n.Changed, release
}

// readRetrying reads a watch's page, again after a pause when the
// connection was lost.
func (f *Front) readRetrying(ctx context.Context, q *Query, rng Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	return retryLost(ctx, f, func() ([]eventstore.Recorded, error) { return f.readPage(ctx, q, rng, page) })
}

// headRetrying is a filtered watch's head, again after a pause when the
// connection was lost.
func (f *Front) headRetrying(ctx context.Context, streamID string) (uint64, error) {
	return retryLost(ctx, f, func() (uint64, error) { return f.d.Head(ctx, streamID) })
}

// retryLost runs call again, after a pause growing from watchRetryDelay,
// while it fails with ErrConnectionLost, up to watchRetries times, unless
// ctx ends or the store is closed.
func retryLost[T any](ctx context.Context, f *Front, call func() (T, error)) (T, error) {
	delay := watchRetryDelay
	for attempt := 0; ; attempt++ {
		v, err := call()
		if err == nil || attempt == watchRetries || !errors.Is(err, ErrConnectionLost) || f.closed.Load() {
			if err != nil && f.cfg.Logger != nil && ctx.Err() == nil && !errors.Is(err, eventstore.ErrClosed) {
				f.cfg.Logger.LogAttrs(ctx, slog.LevelError, "esv2: watch ended by a database error",
					slog.Int("attempts", attempt+1), slog.String("error", err.Error()))
			}
			return v, err
		}
		if f.cfg.Logger != nil {
			f.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "esv2: watch lost its connection, reading again",
				slog.Int("attempt", attempt+1), slog.Duration("delay", delay), slog.String("error", err.Error()))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			var zero T
			return zero, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, watchRetryMaxDelay)
	}
}

// Info describes a stream, or the whole store for AllStreams; see
// [eventstore.Store.Info].
func (f *Front) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if err := f.check(ctx); err != nil {
		return eventstore.StreamInfo{}, err
	}
	if err := validate.StreamID(streamID); err != nil {
		return eventstore.StreamInfo{}, err
	}
	return f.d.Info(ctx, streamID)
}

// SaveSnapshot stores s as the latest snapshot of (s.StreamID, s.Name); see
// [eventstore.Store.SaveSnapshot]. An empty Name is
// eventstore.DefaultSnapshotName.
func (f *Front) SaveSnapshot(ctx context.Context, s eventstore.Snapshot) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	if err := validate.Snapshot(s, 0); err != nil {
		return err
	}
	if s.Name == "" {
		s.Name = eventstore.DefaultSnapshotName
	}
	return f.d.SaveSnapshot(ctx, s)
}

// LoadSnapshot returns the latest snapshot of (streamID, name); see
// [eventstore.Store.LoadSnapshot].
func (f *Front) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if err := f.check(ctx); err != nil {
		return eventstore.Snapshot{}, err
	}
	if err := validate.Snapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0); err != nil {
		return eventstore.Snapshot{}, err
	}
	if name == "" {
		name = eventstore.DefaultSnapshotName
	}
	return f.d.LoadSnapshot(ctx, streamID, name)
}

// FindEvent returns the event stored with eventID; see
// [eventstore.Store.FindEvent]. Over a driver without the [EventFinder]
// ability it returns an error satisfying errors.Is(err,
// errors.ErrUnsupported).
func (f *Front) FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error) {
	if err := f.check(ctx); err != nil {
		return eventstore.Recorded{}, err
	}
	if err := validate.EventID(eventID); err != nil {
		return eventstore.Recorded{}, err
	}
	if f.finder == nil {
		return eventstore.Recorded{}, fmt.Errorf("eventstore: find event: %w: the driver cannot look events up by ID", errors.ErrUnsupported)
	}
	return f.finder.FindEvent(ctx, eventID)
}

// DeleteStream deletes a stream; see [eventstore.Lifecycle.DeleteStream].
// Over a driver without the [Deleter] ability it returns an error
// satisfying errors.Is(err, errors.ErrUnsupported).
func (f *Front) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	if err := validate.Delete(streamID, expected); err != nil {
		return err
	}
	if f.deleter == nil {
		return unsupported("delete streams")
	}
	err := f.deleter.DeleteStream(ctx, streamID, expected)
	f.removed(streamID, err)
	return err
}

// removed wakes the watchers of streamID (and of AllStreams) after a
// deletion or truncation: a subscription waiting at the head then reads
// it again, and its checkpoint passes the positions removed (WaitFor on
// one of them returns) instead of waiting for the next append. A wake
// finds no event it has not had: removing only takes events away.
func (f *Front) removed(streamID string, err error) {
	if err == nil {
		f.hub.Notify([]string{streamID})
	}
}

// TruncateStream removes a stream's events below a version; see
// [eventstore.Lifecycle.TruncateStream]. Over a driver without the
// [Deleter] ability it returns an error satisfying errors.Is(err,
// errors.ErrUnsupported).
func (f *Front) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	if err := validate.Truncate(streamID, before); err != nil {
		return err
	}
	if f.deleter == nil {
		return unsupported("truncate streams")
	}
	err := f.deleter.TruncateStream(ctx, streamID, before)
	f.removed(streamID, err)
	return err
}

// DeleteSnapshots removes snapshots; see
// [eventstore.Lifecycle.DeleteSnapshots]. Over a driver without the
// [Deleter] ability it returns an error satisfying errors.Is(err,
// errors.ErrUnsupported).
func (f *Front) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	if err := f.check(ctx); err != nil {
		return err
	}
	if err := validate.Snapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0); err != nil {
		return err
	}
	if f.deleter == nil {
		return unsupported("delete snapshots")
	}
	return f.deleter.DeleteSnapshots(ctx, streamID, name)
}

// LockStream locks a stream across processes; see
// [eventstore.StreamLocker.LockStream]. Over a driver without the
// [StreamLocker] ability it returns an error satisfying errors.Is(err,
// errors.ErrUnsupported).
func (f *Front) LockStream(ctx context.Context, streamID string) (unlock func(context.Context) error, err error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	if err := validate.LockStream(streamID); err != nil {
		return nil, err
	}
	if f.locker == nil {
		return nil, unsupported("lock streams")
	}
	return f.locker.LockStream(ctx, streamID)
}

// StreamLocked reports whether another holder has, or waits for, a
// stream's lock; see [eventstore.StreamLocker.StreamLocked]. Over a driver
// without the [StreamLocker] ability it returns an error satisfying
// errors.Is(err, errors.ErrUnsupported).
func (f *Front) StreamLocked(ctx context.Context, streamID string) (bool, error) {
	if err := f.check(ctx); err != nil {
		return false, err
	}
	if err := validate.LockStream(streamID); err != nil {
		return false, err
	}
	if f.locker == nil {
		return false, unsupported("lock streams")
	}
	return f.locker.StreamLocked(ctx, streamID)
}

func unsupported(what string) error {
	return fmt.Errorf("eventstore: %s: %w: the driver cannot", what, errors.ErrUnsupported)
}

// Close closes the store: watchers end with eventstore.ErrClosed, every
// later call returns it, and the driver is closed (appends it has not sent
// get ErrClosed; one being committed gets its outcome). Close is idempotent
// and safe to call concurrently; every call returns the first one's result.
func (f *Front) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.hub.Close()
		f.closeErr = f.d.Close()
	})
	return f.closeErr
}
