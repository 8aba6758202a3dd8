package aggregate

// Aggregate is one loaded aggregate: its state S, the stream version that
// state reflects, and the events recorded since, waiting for
// [Repository.Save]. Get one from [Repository.Load]. An Aggregate is not
// safe for concurrent use; load one per goroutine.
type Aggregate[S, E any] struct {
	id       string
	state    S
	version  uint64
	position uint64
	snapshot uint64
	pending  []E
	evolve   func(S, E) S
}

// ID returns the aggregate's stream ID.
func (a *Aggregate[S, E]) ID() string { return a.id }

// State returns the current state, including the recorded events not saved
// yet.
func (a *Aggregate[S, E]) State() S { return a.state }

// Version returns the stream version of the last stored event the state
// reflects: the loaded version, and after a successful Save the version
// the stream has after it. Recorded events not saved yet do not count. 0
// means the stream has no events.
func (a *Aggregate[S, E]) Version() uint64 { return a.version }

// Position returns the global position in the store of the last event
// this aggregate knows: after a [Repository.Save] or [Repository.Update]
// that stored events, the position of the last of them; after one whose
// command was already stored ([WithCommandID]), the position of the
// stream's last event, which is that command's or a later one's. A handler
// that then waits for a subscription to reach Position reads its own write
// (see [subscription.Subscription.WaitFor]). After [Repository.Load] it is
// the position of the last event read, 0 when the stream has no events or
// when the state came from a snapshot with no event after it.
//
// [subscription.Subscription.WaitFor]: https://pkg.go.dev/github.com/esv2/esv2/subscription#Subscription.WaitFor
func (a *Aggregate[S, E]) Position() uint64 { return a.position }

// SnapshotVersion returns the version of the snapshot Load started from,
// or 0 when it replayed the stream from its first event.
func (a *Aggregate[S, E]) SnapshotVersion() uint64 { return a.snapshot }

// Pending returns the events recorded and not saved yet, in order. The
// slice belongs to the aggregate; do not modify it.
func (a *Aggregate[S, E]) Pending() []E { return a.pending }

// Record folds events into the state and queues them for the next Save.
func (a *Aggregate[S, E]) Record(events ...E) {
	for _, e := range events {
		a.state = a.evolve(a.state, e)
	}
	a.pending = append(a.pending, events...)
}
