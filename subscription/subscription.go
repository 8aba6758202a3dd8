package subscription

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Handler handles a batch of events, in global order. A subscription made
// with [New] calls it, then writes its checkpoint: delivery is at least
// once, since a crash or a lost lease between the two hands the batch over
// again. A handler that is not transactional must therefore be idempotent
// (an upsert keyed by the event's position or ID, say). An error is
// retried, then handled by the subscription's [Policy].
type Handler func(ctx context.Context, events []eventstore.Recorded) error

// TxHandler handles a batch of events, in global order, in tx: the
// database transaction in which the subscription also writes its
// checkpoint. A read model kept in the event store's database with it is
// updated exactly once per event: its rows and the checkpoint commit
// together or not at all. The handler must not commit or roll back tx, nor
// keep it after it returns, and must not append to the store while it runs:
// SQLite runs tx on the store's one writer, which would wait for the
// handler. An error rolls tx back, and is retried, then
// handled by the subscription's [Policy].
type TxHandler[Tx any] func(ctx context.Context, tx Tx, events []eventstore.Recorded) error

// Errors of subscriptions.
var (
	// ErrRunning reports a second Run of a Subscription that is running.
	ErrRunning = errors.New("subscription: already running")
	// ErrPartitions reports that a subscription exists with another number
	// of partitions than WithPartitions asks for.
	ErrPartitions = errors.New("subscription: partition count differs from the stored one")
)

// HandlerError reports a batch the handler failed on after its retries,
// under the Stop policy: Run returns it, and the checkpoint stays before
// the batch.
type HandlerError struct {
	Subscription string
	// First and Last are the positions of the batch's first and last
	// events.
	First, Last uint64
	// Attempts is how many times the batch was tried.
	Attempts int
	// Err is the handler's last error.
	Err error
}

// Error says which subscription and batch failed, and why.
func (e *HandlerError) Error() string {
	return fmt.Sprintf("subscription %q: handler failed on positions %d to %d after %d attempts: %v",
		e.Subscription, e.First, e.Last, e.Attempts, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// handlerError marks an error as the handler's, not the backend's.
type handlerError struct{ err error }

func (h *handlerError) Error() string { return h.err.Error() }
func (h *handlerError) Unwrap() error { return h.err }

// core is a Backend without the methods that take its transaction.
type core interface {
	Register(ctx context.Context, name string, n int, start uint64) (int, error)
	Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error)
	Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]Lease, error)
	Leave(ctx context.Context, name, member string) error
	Park(ctx context.Context, name string, p Parked) error
	Parked(ctx context.Context, name string) ([]Parked, error)
	RequestReplay(ctx context.Context, name string, position uint64) (int, error)
	ReplayRequests(ctx context.Context, name string) ([]Parked, error)
	ClearReplay(ctx context.Context, name string, p Parked) (bool, error)
	Partitions(ctx context.Context, name string) ([]Partition, error)
	Reset(ctx context.Context, name string, position uint64) error
	Delete(ctx context.Context, name string) error
}

// changer is implemented by the stores of this module (through their
// front, driver.Front): it wakes a live subscription at an append instead
// of at its next poll.
type changer interface {
	Changes(streamID string) (changed func() <-chan struct{}, release func())
}

// Subscription is a named, durable consumer of the events of a store (all
// of them, or those of a filter), made by [New] or [NewTx] and run by
// [Subscription.Run]. Its state (checkpoints, leases, parked events) lives
// in the store's database. Its methods are safe for concurrent use.
type Subscription struct {
	name  string
	store eventstore.Store
	b     core
	o     options

	// deliver hands events to the handler and writes the checkpoints cps,
	// the at-least-once way (New: then only when commit is set) or in one
	// transaction (NewTx: always). With no events it only writes the
	// checkpoints.
	deliver func(ctx context.Context, member string, cps []Lease, events []eventstore.Recorded, commit bool) error
	// txn: made by NewTx, every batch commits its checkpoint.
	txn bool
	// replay hands a parked event to the handler and unparks it. The
	// handler's error comes back as a *handlerError.
	replay func(ctx context.Context, e eventstore.Recorded) error

	running atomic.Bool

	mu       sync.Mutex
	st       Status
	done     map[int]uint64 // held partition -> position handled
	n        int            // partitions, once Run registered
	progress chan struct{}  // closed and replaced at each progress
	headTime time.Time      // time of the head's event, as last seen
}

// New returns the subscription name of store, whose handler h is called
// at least once for each event (see [Handler]). It is created in the
// store's database when it first runs; see the options for the rest.
func New[Tx any](store Store[Tx], name string, h Handler, opts ...Option) (*Subscription, error) {
	if h == nil {
		return nil, invalid("handler", "nil")
	}
	s, b, err := newSubscription(store, name, opts)
	if err != nil {
		return nil, err
	}
	s.deliver = func(ctx context.Context, member string, cps []Lease, events []eventstore.Recorded, commit bool) error {
		if len(events) > 0 {
			if err := h(ctx, events); err != nil {
				return &handlerError{err}
			}
		}
		if !commit {
			return nil
		}
		return b.Commit(ctx, name, member, cps, nil)
	}
	s.replay = func(ctx context.Context, e eventstore.Recorded) error {
		if err := h(ctx, []eventstore.Recorded{e}); err != nil {
			return &handlerError{err}
		}
		return b.Unpark(ctx, name, e.Position, nil)
	}
	return s, nil
}

// NewTx returns the subscription name of store, whose handler h runs in
// the transaction that writes the subscription's checkpoint, for exactly
// once effects in the store's database (see [TxHandler]). It is created in
// the store's database when it first runs; see the options for the rest.
func NewTx[Tx any](store Store[Tx], name string, h TxHandler[Tx], opts ...Option) (*Subscription, error) {
	if h == nil {
		return nil, invalid("handler", "nil")
	}
	s, b, err := newSubscription(store, name, opts)
	if err != nil {
		return nil, err
	}
	s.txn = true
	s.deliver = func(ctx context.Context, member string, cps []Lease, events []eventstore.Recorded, _ bool) error {
		var fn func(context.Context, Tx) error
		if len(events) > 0 {
			fn = func(ctx context.Context, tx Tx) error {
				if err := h(ctx, tx, events); err != nil {
					return &handlerError{err}
				}
				return nil
			}
		}
		return b.Commit(ctx, name, member, cps, fn)
	}
	s.replay = func(ctx context.Context, e eventstore.Recorded) error {
		return b.Unpark(ctx, name, e.Position, func(ctx context.Context, tx Tx) error {
			if err := h(ctx, tx, []eventstore.Recorded{e}); err != nil {
				return &handlerError{err}
			}
			return nil
		})
	}
	return s, nil
}

func newSubscription[Tx any](store Store[Tx], name string, opts []Option) (*Subscription, Backend[Tx], error) {
	if store == nil {
		return nil, nil, invalid("store", "nil")
	}
	if err := checkName("subscription name", name); err != nil {
		return nil, nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, nil, err
		}
	}
	if o.member == "" {
		o.member = defaultMember()
	}
	b := store.Subscriptions()
	if b == nil {
		return nil, nil, invalid("store", "its Subscriptions method returned nil")
	}
	s := &Subscription{
		name:     name,
		store:    store,
		b:        b,
		o:        o,
		progress: make(chan struct{}),
		st:       Status{Name: name, Member: o.member, State: Stopped},
	}
	return s, b, nil
}

// Name returns the subscription's name.
func (s *Subscription) Name() string { return s.name }

// PartitionOf returns the partition of a stream among n: events of one
// stream always land in one partition, so their order holds. It is
// [eventstore.PartitionOf]: FNV-1a of the stream ID, modulo n.
func PartitionOf(streamID string, n int) int { return eventstore.PartitionOf(streamID, n) }

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run consumes events until ctx ends, and then returns nil. It first
// registers the subscription (creating it, from the start given by
// WithStart, if it does not exist) and joins its group; then, for the
// partitions this member holds, it catches up from their checkpoints and
// follows live appends, handing events to the handler in batches.
//
// Run returns early with a *HandlerError when a batch fails under the Stop
// policy, with ErrPartitions, with an error satisfying
// errors.Is(err, eventstore.ErrClosed) when the store is closed, and with
// ErrRunning when the subscription is running already. A database error
// (a lost connection, say) does not end it: it is kept in Status().Err and
// tried again after a pause. On its way out Run writes its last
// checkpoints and releases its partitions, so another member takes them
// over at once; it does so too when the handler panics, and then panics
// again with the handler's value.
func (s *Subscription) Run(ctx context.Context) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	r := &run{s: s, ttl: s.o.leaseTTL, leases: map[int]Lease{}}
	defer func() {
		// A handler's panic goes on to the caller, but the partitions are
		// given up first, as on any other way out: the other members take
		// them now rather than when the lease ends.
		if p := recover(); p != nil {
			r.leave(ctx)
			s.setStopped()
			panic(p)
		}
	}()
	err := r.loop(ctx)
	r.leave(ctx)
	s.setStopped()
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		return nil
	}
	if err != nil {
		s.log(ctx, slog.LevelError, "esv2: subscription stopped", slog.String("error", err.Error()))
	}
	return err
}

func (s *Subscription) setStopped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.State = Stopped
	s.st.Partitions = nil
	s.done = nil
	s.signalLocked()
}

func (s *Subscription) signalLocked() {
	close(s.progress)
	s.progress = make(chan struct{})
}

// sleep waits for d or until ctx ends, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fatal reports an error that ends Run rather than being tried again.
func fatal(err error) bool {
	var he *HandlerError
	return errors.As(err, &he) || errors.Is(err, eventstore.ErrClosed) ||
		errors.Is(err, ErrPartitions) || errors.Is(err, eventstore.ErrInvalidInput)
}

func (s *Subscription) setHead(head uint64, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Head = max(s.st.Head, head)
	s.headTime = t
}

func (s *Subscription) count(f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
}

// updatePositionLocked sets Status.Position from the handled positions.
func (s *Subscription) updatePositionLocked() {
	if len(s.done) == 0 {
		return
	}
	pos := uint64(math.MaxUint64)
	for _, v := range s.done {
		pos = min(pos, v)
	}
	s.st.Position = pos
	s.st.Head = max(s.st.Head, pos)
}
