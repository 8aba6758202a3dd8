package subscription

import (
	"context"
	"errors"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// Store is an event store whose database also keeps subscriptions: the
// checkpoints, leases, members and parked events of [Backend]. Tx is the
// transaction a transactional handler receives: *sql.Tx for
// adapters/sqlite, pgx.Tx for adapters/postgres. Both adapters' *Store
// implement it, and Go infers Tx from the store given to [New] or [NewTx].
type Store[Tx any] interface {
	eventstore.Store
	// Subscriptions returns the store's subscription backend.
	Subscriptions() Backend[Tx]
}

// ErrLeaseLost reports that a member no longer holds a partition it was
// handling: its lease ran out and another member took the partition, or
// the subscription was reset or deleted. The batch's checkpoint (and, with
// a transactional handler, the handler's writes) was rolled back; the
// subscription hands the partition's events to whoever holds it now.
var ErrLeaseLost = errors.New("subscription: partition lease lost")

// Backend keeps subscriptions' durable state in an event store's database.
// It is for adapter authors: applications use [New], [NewTx] and the
// operations of this package, which validate every argument before calling
// a Backend (names are non-empty valid UTF-8 of at most [MaxNameLen]
// bytes, partitions are in [0, n) and n in [1, [MaxPartitions]], ttl is
// positive) and call it with a context that is not nil. Its methods are
// safe for concurrent use, by one process or many.
//
// A subscription has a fixed number of partitions, each with a position
// (the global position up to which its events were handled, 0 before the
// first), an owner (a member name, or none), the time its owner's lease
// ends, and an epoch that grows each time the partition changes hands or
// is reset. Times are the database's own clock where it has one (the
// members of a group may run on different machines).
//
// Errors: a subscription that does not exist is an error satisfying
// errors.Is(err, eventstore.ErrNotFound) (except for Register, which
// creates it); after the store is closed, errors.Is(err,
// eventstore.ErrClosed); a lost connection or other database failure is
// returned wrapped.
type Backend[Tx any] interface {
	// Register creates subscription name with n partitions, each at
	// position start, unless it exists. It returns the number of
	// partitions stored: n for a new subscription, the existing number
	// otherwise (the caller decides whether a difference is an error).
	Register(ctx context.Context, name string, n int, start uint64) (int, error)

	// Heartbeat records that member is alive until ttl from now, forgets
	// the members of name whose time has passed, and returns the names of
	// the live members (member included), sorted.
	Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error)

	// Acquire makes member hold the partitions of want that it can, with
	// leases ending ttl from now: those it holds already are extended;
	// those with no owner, or whose owner's lease has ended, are taken
	// (their epoch grows by one). It releases the partitions it holds
	// that are not in want (no owner, lease ended, epoch unchanged). It
	// returns the leases member holds afterwards, in partition order,
	// each with its epoch and position. want is sorted and holds no
	// duplicate.
	Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]Lease, error)

	// Leave releases every partition member holds and forgets the member.
	// A subscription or member that does not exist is not an error.
	Leave(ctx context.Context, name, member string) error

	// Commit, in one transaction, runs fn with it (when fn is not nil),
	// then sets each checkpoint's partition to its Position, provided
	// member still owns the partition under the checkpoint's Epoch
	// (whether or not its lease has ended: no one else took it). If one
	// is not owned so, nothing is committed and Commit returns an error
	// satisfying errors.Is(err, ErrLeaseLost). An error from fn rolls the
	// transaction back and is returned as it is (not wrapped). A
	// checkpoint never moves a position backwards: a lower Position
	// leaves the stored one.
	//
	// If ctx ends, or the connection is lost, while COMMIT is under way,
	// the outcome may be unknown; Commit then returns an error, and the
	// subscription delivers the batch again (at-least-once), which a
	// transactional handler's read model survives because the checkpoint
	// was written in the same transaction as its rows: either both or
	// neither.
	Commit(ctx context.Context, name, member string, cps []Lease, fn func(ctx context.Context, tx Tx) error) error

	// Park stores p (an event the handler failed on) among name's parked
	// events, replacing an entry at the same position, its
	// ReplayRequested included: a zero one clears a replay request.
	Park(ctx context.Context, name string, p Parked) error

	// RequestReplay asks the members of name to replay its parked event
	// at position, or every one of its parked events when position is 0
	// (no event has position 0): it sets their ReplayRequested to now
	// (again, for one requested already) and returns how many it marked.
	// A subscription that does not exist, or a position other than 0
	// with no parked event, is an error satisfying errors.Is(err,
	// eventstore.ErrNotFound), and nothing is marked; position 0 with no
	// parked event marks none and is not an error.
	RequestReplay(ctx context.Context, name string, position uint64) (int, error)

	// ReplayRequests returns name's parked events whose replay is
	// requested (ReplayRequested not zero), in position order: the query
	// a running member makes at each lease renewal, cheap when there is
	// none.
	ReplayRequests(ctx context.Context, name string) ([]Parked, error)

	// ClearReplay records that a requested replay of p, as ReplayRequests
	// returned it, failed: it sets the Error, Attempts and Time of name's
	// parked event at p.Position to p's and clears its request, provided
	// the event is still parked and its ReplayRequested still equals p's
	// (a request made again meanwhile is kept, and an event discarded
	// meanwhile is not parked again). It reports whether it did.
	ClearReplay(ctx context.Context, name string, p Parked) (bool, error)

	// Parked returns name's parked events, in position order.
	Parked(ctx context.Context, name string) ([]Parked, error)

	// Unpark, in one transaction, runs fn with it (when fn is not nil) and
	// deletes the parked event of name at position. It returns an error
	// satisfying errors.Is(err, eventstore.ErrNotFound) when there is
	// none, and fn's error as it is.
	Unpark(ctx context.Context, name string, position uint64, fn func(ctx context.Context, tx Tx) error) error

	// Partitions returns the partitions of subscription name, or of every
	// subscription when name is "", ordered by name and partition. An
	// unknown name gives an empty list.
	Partitions(ctx context.Context, name string) ([]Partition, error)

	// Reset sets every partition of name to position, ends its leases and
	// grows its epochs, so that a member's next Commit fails with
	// ErrLeaseLost and the partitions resume from position.
	Reset(ctx context.Context, name string, position uint64) error

	// Delete removes subscription name: its partitions, members and
	// parked events.
	Delete(ctx context.Context, name string) error
}

// Lease is a partition a member holds: its Epoch, which a commit must
// present, and its Position. Given to Commit, it is a checkpoint: Position
// is then the new position.
type Lease struct {
	Partition int
	Epoch     uint64
	Position  uint64
}

// Partition is the stored state of one partition of a subscription.
type Partition struct {
	Subscription string
	Partition    int
	// Position is the global position up to which the partition's events
	// were handled.
	Position uint64
	// Owner is the member holding the partition, "" when none.
	Owner string
	// LeaseUntil is when the owner's lease ends; zero when no owner.
	LeaseUntil time.Time
	// Epoch grows each time the partition changes hands or is reset.
	Epoch uint64
	// Updated is when the partition's position last changed.
	Updated time.Time
}

// Parked is an event a subscription's handler failed on and set aside, with
// the error it gave.
type Parked struct {
	// Position, StreamID, Version, Type and EventID identify the event.
	Position uint64
	StreamID string
	Version  uint64
	Type     string
	EventID  string
	// Error is the handler's last error, as text.
	Error string
	// Attempts is how many times the handler was tried.
	Attempts int
	// Time is when the event was parked, or when a requested replay
	// last failed on it.
	Time time.Time
	// ReplayRequested is when a replay of the event was requested
	// ([RequestReplay]) and not yet tried by a running member; zero when
	// none is.
	ReplayRequested time.Time
}

// Limits of names and partitions.
const (
	// MaxNameLen is the longest subscription or member name, in bytes.
	MaxNameLen = 200
	// MaxPartitions is the largest number of partitions
	// ([eventstore.MaxPartitions]).
	MaxPartitions = eventstore.MaxPartitions
)
