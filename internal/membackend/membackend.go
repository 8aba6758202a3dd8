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
// # Faults
//
// [NewFaulty] makes a backend that breaks the contract on purpose, in the
// ways [Faults] lists: the conformance suite's own tests check that each
// fault fails the subtest written to catch it.
//
// # Time
//
// Leases and members expire by [Backend.Now], which tests may replace to
// move time by hand.
package membackend

import (
	"cmp"
	"context"
	"errors"
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
	mu     sync.Mutex
	subs   map[string]*sub
	faults Faults
	// ghosts keeps what DeleteKeepsParked and DeleteKeepsMembers leave of
	// deleted subscriptions.
	ghosts map[string]*sub
	// epochs holds the highest epoch each deleted subscription reached:
	// one created again under its name starts there.
	epochs map[string]uint64
}

// Faults are deliberate violations of the contract, one per field, for
// the tests of the conformance suite. The zero value is the contract.
type Faults struct {
	RegisterOverwrites    bool // Register of an existing name replaces its partitions
	RegisterForgetsEpochs bool // a name created again starts its epochs at 0
	HeartbeatKeepsExpired bool // Heartbeat forgets no one
	HeartbeatUnsorted     bool // Heartbeat lists members in no particular order
	AcquireStealsLive     bool // Acquire takes partitions whose owner's lease is live
	AcquireKeepsEpoch     bool // taking a partition leaves its epoch
	AcquireBumpsOwn       bool // extending a member's own lease grows its epoch
	AcquireKeepsUnwanted  bool // Acquire does not release what is not in want
	AcquireUnordered      bool // Acquire returns leases in reverse partition order
	AcquireRace           bool // Acquire checks owners and takes partitions in two steps, unlocked between
	LeaveKeepsPartitions  bool // Leave forgets the member but keeps its leases
	CommitIgnoresEpoch    bool // Commit checks the owner only
	CommitIgnoresOwner    bool // Commit checks the epoch only
	CommitPartial         bool // Commit writes checkpoints until the first lost one
	CommitBackwards       bool // Commit sets positions, lower ones too
	CommitWrapsFnError    bool // Commit wraps fn's error
	CommitFnErrorCommits  bool // Commit writes the checkpoints even when fn fails
	ParkAppends           bool // Park of a parked position keeps the old entry (first wins)
	ParkedUnordered       bool // Parked lists events in reverse position order
	UnparkIgnoresFnError  bool // Unpark deletes the event and returns nil when fn fails
	UnparkMissingOK       bool // Unpark of a position with no parked event is not an error
	ReplayMarksAll        bool // RequestReplay of one position marks every parked event
	ReplayMissingOK       bool // RequestReplay of a position with no parked event marks none, without error
	ReplayRequestsAll     bool // ReplayRequests lists every parked event, requested or not
	ParkKeepsRequest      bool // Park of a parked position keeps its replay request
	ClearReplayAny        bool // ClearReplay clears a request made again since, and parks again a discarded event
	PartitionsUnordered   bool // Partitions("") lists subscriptions in reverse name order
	ResetKeepsEpochs      bool // Reset ends leases but leaves epochs
	ResetKeepsOwners      bool // Reset sets positions only
	DeleteKeepsParked     bool // Delete leaves the parked events, found again by a new subscription of the name
	DeleteKeepsMembers    bool // Delete leaves the members, found again by a new subscription of the name
	ClosedIgnored         bool // Close has no effect
}

type sub struct {
	parts   []subscription.Partition
	members map[string]time.Time // member -> end of its time
	parked  map[uint64]subscription.Parked
}

// New returns an empty backend whose Commit and Unpark give fn newTx() as
// the transaction (the zero Tx when newTx is nil).
func New[Tx any](newTx func() Tx) *Backend[Tx] {
	return NewFaulty(newTx, Faults{})
}

// NewFaulty is New with the deliberate faults f, for the tests of the
// conformance suite; its handles (see [Backend.Open]) share them.
func NewFaulty[Tx any](newTx func() Tx, f Faults) *Backend[Tx] {
	return &Backend[Tx]{Now: time.Now, db: &db{subs: make(map[string]*sub), faults: f, ghosts: make(map[string]*sub)}, newTx: newTx}
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
	b.closed = !b.db.faults.ClosedIgnored
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
	f := b.db.faults
	old, ok := b.db.subs[name]
	if ok && !f.RegisterOverwrites {
		return len(old.parts), nil
	}
	now := b.now()
	s := &sub{members: make(map[string]time.Time), parked: make(map[uint64]subscription.Parked)}
	if kept, ok := b.db.ghosts[name]; ok {
		s.members, s.parked = kept.members, kept.parked
	}
	first := b.db.epochs[name]
	if f.RegisterForgetsEpochs {
		first = 0
	}
	for i := range n {
		s.parts = append(s.parts, subscription.Partition{Subscription: name, Partition: i, Position: start, Updated: now, Epoch: first})
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
		if !until.After(now) && !b.db.faults.HeartbeatKeepsExpired {
			delete(s.members, m)
			continue
		}
		live = append(live, m)
	}
	slices.Sort(live)
	if b.db.faults.HeartbeatUnsorted {
		slices.Reverse(live)
	}
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
	f := b.db.faults
	now := b.now()
	until := now.Add(ttl)
	var leases []subscription.Lease
	for i := range s.parts {
		p := &s.parts[i]
		_, wanted := slices.BinarySearch(want, i)
		switch {
		case !wanted:
			if p.Owner == member && !f.AcquireKeepsUnwanted {
				p.Owner, p.LeaseUntil = "", time.Time{}
			}
			continue
		case p.Owner == member:
			p.LeaseUntil = until
			if f.AcquireBumpsOwn {
				p.Epoch++
			}
		case p.Owner == "" || !p.LeaseUntil.After(now) || f.AcquireStealsLive:
			if f.AcquireRace {
				// Check, then take in a second step, as a read followed
				// by an unconditional UPDATE would.
				b.db.mu.Unlock()
				time.Sleep(time.Millisecond)
				b.db.mu.Lock()
			}
			p.Owner, p.LeaseUntil = member, until
			if !f.AcquireKeepsEpoch {
				p.Epoch++
			}
		default:
			continue // another member's live lease
		}
		leases = append(leases, subscription.Lease{Partition: i, Epoch: p.Epoch, Position: p.Position})
	}
	if f.AcquireUnordered {
		slices.Reverse(leases)
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
	if b.db.faults.LeaveKeepsPartitions {
		return nil
	}
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
	f := b.db.faults
	var fnErr error
	if fn != nil {
		if fnErr = fn(ctx, b.tx()); fnErr != nil && !f.CommitFnErrorCommits {
			if f.CommitWrapsFnError {
				return fmt.Errorf("handler: %w", fnErr)
			}
			return fnErr
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
	now := b.now()
	// Check every checkpoint before writing any: all or nothing.
	for _, cp := range cps {
		if cp.Partition < 0 || cp.Partition >= len(s.parts) {
			return fmt.Errorf("subscription %q partition %d: no such partition: %w", name, cp.Partition, subscription.ErrLeaseLost)
		}
		p := &s.parts[cp.Partition]
		if (p.Owner != member && !f.CommitIgnoresOwner) || (p.Epoch != cp.Epoch && !f.CommitIgnoresEpoch) {
			return fmt.Errorf("subscription %q partition %d: held by %q at epoch %d, not %q at epoch %d: %w",
				name, cp.Partition, p.Owner, p.Epoch, member, cp.Epoch, subscription.ErrLeaseLost)
		}
		if f.CommitPartial && (cp.Position > p.Position || f.CommitBackwards) {
			p.Position, p.Updated = cp.Position, now
		}
	}
	for _, cp := range cps {
		if p := &s.parts[cp.Partition]; cp.Position > p.Position || f.CommitBackwards {
			p.Position, p.Updated = cp.Position, now
		}
	}
	return fnErr
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
	if _, ok := s.parked[p.Position]; ok && b.db.faults.ParkAppends {
		return nil
	}
	if old, ok := s.parked[p.Position]; ok && b.db.faults.ParkKeepsRequest && p.ReplayRequested.IsZero() {
		p.ReplayRequested = old.ReplayRequested
	}
	s.parked[p.Position] = p
	return nil
}

// RequestReplay implements [subscription.Backend].
func (b *Backend[Tx]) RequestReplay(ctx context.Context, name string, position uint64) (int, error) {
	if err := b.lock(ctx); err != nil {
		return 0, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return 0, err
	}
	f := b.db.faults
	if _, ok := s.parked[position]; position != 0 && !ok {
		if f.ReplayMissingOK {
			return 0, nil
		}
		return 0, fmt.Errorf("subscription %q: no parked event at position %d: %w", name, position, eventstore.ErrNotFound)
	}
	now := b.now().Truncate(eventstore.TimePrecision)
	n := 0
	for pos, p := range s.parked {
		if position == 0 || pos == position || f.ReplayMarksAll {
			p.ReplayRequested = now
			s.parked[pos] = p
			n++
		}
	}
	return n, nil
}

// ClearReplay implements [subscription.Backend].
func (b *Backend[Tx]) ClearReplay(ctx context.Context, name string, p subscription.Parked) (bool, error) {
	if err := b.lock(ctx); err != nil {
		return false, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return false, err
	}
	old, ok := s.parked[p.Position]
	if !b.db.faults.ClearReplayAny && (!ok || old.ReplayRequested.IsZero() || !old.ReplayRequested.Equal(p.ReplayRequested)) {
		return false, nil
	}
	old.Position, old.StreamID, old.Version, old.Type, old.EventID = p.Position, p.StreamID, p.Version, p.Type, p.EventID
	old.Error, old.Attempts, old.Time, old.ReplayRequested = p.Error, p.Attempts, p.Time, time.Time{}
	s.parked[p.Position] = old
	return true, nil
}

// ReplayRequests implements [subscription.Backend].
func (b *Backend[Tx]) ReplayRequests(ctx context.Context, name string) ([]subscription.Parked, error) {
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	var out []subscription.Parked
	for _, p := range s.parked {
		if !p.ReplayRequested.IsZero() || b.db.faults.ReplayRequestsAll {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b subscription.Parked) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
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
	if b.db.faults.ParkedUnordered {
		slices.Reverse(out)
	}
	return out, nil
}

// Unpark implements [subscription.Backend].
func (b *Backend[Tx]) Unpark(ctx context.Context, name string, position uint64, fn func(ctx context.Context, tx Tx) error) error {
	// Look first, so that fn does not run for nothing; look again after
	// it, since another call may have unparked the event meanwhile.
	f := b.db.faults
	if err := b.findParked(ctx, name, position); err != nil {
		if f.UnparkMissingOK && errors.Is(err, eventstore.ErrNotFound) {
			return nil
		}
		return err
	}
	if fn != nil {
		if err := fn(ctx, b.tx()); err != nil && !f.UnparkIgnoresFnError {
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
		if b.db.faults.PartitionsUnordered {
			slices.Reverse(names)
		}
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
		if b.db.faults.ResetKeepsOwners {
			continue
		}
		p.Owner, p.LeaseUntil = "", time.Time{}
		if !b.db.faults.ResetKeepsEpochs {
			p.Epoch++
		}
	}
	return nil
}

// Delete implements [subscription.Backend].
func (b *Backend[Tx]) Delete(ctx context.Context, name string) error {
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.db.mu.Unlock()
	s, err := b.get(name)
	if err != nil {
		return err
	}
	delete(b.db.subs, name)
	if b.db.epochs == nil {
		b.db.epochs = make(map[string]uint64)
	}
	for _, p := range s.parts {
		b.db.epochs[name] = max(b.db.epochs[name], p.Epoch)
	}
	if f := b.db.faults; f.DeleteKeepsParked || f.DeleteKeepsMembers {
		ghost := &sub{members: make(map[string]time.Time), parked: make(map[uint64]subscription.Parked)}
		if f.DeleteKeepsParked {
			ghost.parked = s.parked
		}
		if f.DeleteKeepsMembers {
			ghost.members = s.members
		}
		b.db.ghosts[name] = ghost
	}
	return nil
}
