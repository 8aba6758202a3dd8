// Package membackend is an in-memory reference implementation of
// [subscription.Backend]: the contract of that interface, and nothing
// more, kept in maps behind one mutex. It serves the tests of package
// subscription (a loop can run on it without a database) and the
// conformance suite of backends, which must pass on it.
//
// # Transactions
//
// Commit and Unpark run their fn with newTx() as the transaction. The Tx
// has no effect: nothing fn does through it is undone when the call fails.
// fn runs without the backend's lock held, so that it may call the
// backend; the checks and writes that follow it are then made atomically,
// as a serializable transaction would make them after fn's statements.
//
// # Time
//
// Leases and members expire by [Backend.Now], which tests may replace to
// move time by hand.
package membackend

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

var _ subscription.Backend[struct{}] = (*Backend[struct{}])(nil)

// Backend is an in-memory [subscription.Backend]. Its methods are safe for
// concurrent use. Handles made with [Backend.Open] share its state, as two
// processes share one database.
type Backend[Tx any] struct {
	// Now is the backend's clock, time.Now by default. Set it before the
	// first call; it is shared with the handles that Open makes only
	// through their own field, which Open copies.
	Now func() time.Time

	db     *db
	newTx  func() Tx
	closed bool // guarded by db.mu
}

// db is the state under one or more handles, as a database is under
// several processes' stores.
type db struct {
	mu   sync.Mutex
	subs map[string]*sub
}

type sub struct {
	parts   []subscription.Partition
	members map[string]time.Time // member -> end of its time
	parked  map[uint64]subscription.Parked
}

// New returns an empty backend whose Commit and Unpark give fn newTx() as
// the transaction (the zero Tx when newTx is nil).
func New[Tx any](newTx func() Tx) *Backend[Tx] {
	return &Backend[Tx]{Now: time.Now, db: &db{subs: make(map[string]*sub)}, newTx: newTx}
}

// Open returns a second handle on b's state, with b's clock and its own
// Close, as a second process opening the same database.
func (b *Backend[Tx]) Open() *Backend[Tx] {
	return &Backend[Tx]{Now: b.Now, db: b.db, newTx: b.newTx}
}

// Close makes every later call on this handle fail with
// eventstore.ErrClosed. It is idempotent; other handles go on.
func (b *Backend[Tx]) Close() error {
	b.db.mu.Lock()
	defer b.db.mu.Unlock()
	b.closed = true
	return nil
}

// lock checks ctx and the handle, then takes the lock; on success the
// caller must unlock b.db.mu.
func (b *Backend[Tx]) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.db.mu.Lock()
	if b.closed {
		b.db.mu.Unlock()
		return eventstore.ErrClosed
	}
	return nil
}

func (b *Backend[Tx]) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

func (b *Backend[Tx]) tx() Tx {
	if b.newTx == nil {
		var zero Tx
		return zero
	}
	return b.newTx()
}

// get returns subscription name; b.db.mu must be held.
func (b *Backend[Tx]) get(name string) (*sub, error) {
	s, ok := b.db.subs[name]
	if !ok {
		return nil, fmt.Errorf("subscription %q: %w", name, eventstore.ErrNotFound)
	}
	return s, nil
}

// Register implements [subscription.Backend].
func (b *Backend[Tx]) Register(ctx context.Context, name string, n int, start uint64) (int, error) {
	if err := b.lock(ctx); err != nil {
		return 0, err
	}
	defer b.db.mu.Unlock()
	if s, ok := b.db.subs[name]; ok {
		return len(s.parts), nil
	}
	now := b.now()
	s := &sub{members: make(map[string]time.Time), parked: make(map[uint64]subscription.Parked)}
	for i := range n {
		s.parts = append(s.parts, subscription.Partition{Subscription: name, Partition: i, Position: start, Updated: now})
	}
	b.db.subs[name] = s
	return n, nil
}

// Heartbeat implements [subscription.Backend].
func (b *Backend[Tx]) Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	now := b.now()
	s.members[member] = now.Add(ttl)
	live := make([]string, 0, len(s.members))
	for m, until := range s.members {
		if !until.After(now) {
			delete(s.members, m)
			continue
		}
		live = append(live, m)
	}
	slices.Sort(live)
	return live, nil
}

// Acquire implements [subscription.Backend].
func (b *Backend[Tx]) Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]subscription.Lease, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	now := b.now()
	until := now.Add(ttl)
	var leases []subscription.Lease
	for i := range s.parts {
		p := &s.parts[i]
		_, wanted := slices.BinarySearch(want, i)
		switch {
		case !wanted:
			if p.Owner == member {
				p.Owner, p.LeaseUntil = "", time.Time{}
			}
			continue
		case p.Owner == member:
			p.LeaseUntil = until
		case p.Owner == "" || !p.LeaseUntil.After(now):
			p.Owner, p.LeaseUntil = member, until
			p.Epoch++
		default:
			continue // another member's live lease
		}
		leases = append(leases, subscription.Lease{Partition: i, Epoch: p.Epoch, Position: p.Position})
	}
	return leases, nil
}

// Leave implements [subscription.Backend].
func (b *Backend[Tx]) Leave(ctx context.Context, name, member string) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, ok := b.db.subs[name]
	if !ok {
		return nil
	}
	delete(s.members, member)
	for i := range s.parts {
		if p := &s.parts[i]; p.Owner == member {
			p.Owner, p.LeaseUntil = "", time.Time{}
		}
	}
	return nil
}

// Commit implements [subscription.Backend].
func (b *Backend[Tx]) Commit(ctx context.Context, name, member string, cps []subscription.Lease, fn func(ctx context.Context, tx Tx) error) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	b.db.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, b.tx()); err != nil {
			return err
		}
	}
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		if len(cps) > 0 {
			// The subscription was deleted under the member: both what
			// ErrLeaseLost's doc and what Backend's say.
			return fmt.Errorf("%w: %w", subscription.ErrLeaseLost, err)
		}
		return err
	}
	// Check every checkpoint before writing any: all or nothing.
	for _, cp := range cps {
		if cp.Partition < 0 || cp.Partition >= len(s.parts) {
			return fmt.Errorf("subscription %q partition %d: no such partition: %w", name, cp.Partition, subscription.ErrLeaseLost)
		}
		p := s.parts[cp.Partition]
		if p.Owner != member || p.Epoch != cp.Epoch {
			return fmt.Errorf("subscription %q partition %d: held by %q at epoch %d, not %q at epoch %d: %w",
				name, cp.Partition, p.Owner, p.Epoch, member, cp.Epoch, subscription.ErrLeaseLost)
		}
	}
	now := b.now()
	for _, cp := range cps {
		if p := &s.parts[cp.Partition]; cp.Position > p.Position {
			p.Position, p.Updated = cp.Position, now
		}
	}
	return nil
}

// Park implements [subscription.Backend].
func (b *Backend[Tx]) Park(ctx context.Context, name string, p subscription.Parked) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return err
	}
	s.parked[p.Position] = p
	return nil
}

// Parked implements [subscription.Backend].
func (b *Backend[Tx]) Parked(ctx context.Context, name string) ([]subscription.Parked, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	out := make([]subscription.Parked, 0, len(s.parked))
	for _, p := range s.parked {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b subscription.Parked) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
}

// Unpark implements [subscription.Backend].
func (b *Backend[Tx]) Unpark(ctx context.Context, name string, position uint64, fn func(ctx context.Context, tx Tx) error) error {
	// Look first, so that fn does not run for nothing; look again after
	// it, since another call may have unparked the event meanwhile.
	if err := b.findParked(ctx, name, position); err != nil {
		return err
	}
	if fn != nil {
		if err := fn(ctx, b.tx()); err != nil {
			return err
		}
	}
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return err
	}
	if _, ok := s.parked[position]; !ok {
		return fmt.Errorf("subscription %q: no parked event at position %d: %w", name, position, eventstore.ErrNotFound)
	}
	delete(s.parked, position)
	return nil
}

func (b *Backend[Tx]) findParked(ctx context.Context, name string, position uint64) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return err
	}
	if _, ok := s.parked[position]; !ok {
		return fmt.Errorf("subscription %q: no parked event at position %d: %w", name, position, eventstore.ErrNotFound)
	}
	return nil
}

// Partitions implements [subscription.Backend].
func (b *Backend[Tx]) Partitions(ctx context.Context, name string) ([]subscription.Partition, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.db.mu.Unlock()
	var names []string
	if name != "" {
		if _, ok := b.db.subs[name]; ok {
			names = []string{name}
		}
	} else {
		for n := range b.db.subs {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	out := []subscription.Partition{}
	for _, n := range names {
		out = append(out, b.db.subs[n].parts...)
	}
	return out, nil
}

// Reset implements [subscription.Backend].
func (b *Backend[Tx]) Reset(ctx context.Context, name string, position uint64) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return err
	}
	now := b.now()
	for i := range s.parts {
		p := &s.parts[i]
		p.Position, p.Updated = position, now
		p.Owner, p.LeaseUntil = "", time.Time{}
		p.Epoch++
	}
	return nil
}

// Delete implements [subscription.Backend].
func (b *Backend[Tx]) Delete(ctx context.Context, name string) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	if _, err := b.get(name); err != nil {
		return err
	}
	delete(b.db.subs, name)
	return nil
}
