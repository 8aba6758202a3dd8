// Package aggregate keeps typed aggregates in an [eventstore.Store]: a state
// type S, an event type E and a pure reducer func(S, E) S are all an
// application writes; a [Repository] loads, saves, retries and snapshots.
//
// # Defining an aggregate
//
//	type Account struct{ Balance int64 }
//
//	type AccountEvent interface{ isAccountEvent() }
//	type Deposited struct{ Amount int64 }
//	func (Deposited) isAccountEvent() {}
//
//	func evolve(a Account, e AccountEvent) Account {
//		switch e := e.(type) {
//		case Deposited:
//			a.Balance += e.Amount
//		}
//		return a
//	}
//
//	events := codec.New[AccountEvent]()
//	err := codec.Register[Deposited](events, "account.deposited")
//
//	repo, err := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{
//		Evolve: evolve,
//		Codec:  events,
//	})
//
// The compiler checks the reducer and the events against S and E; there is
// no interface{} to assert and no method looked up by reflection.
//
// # Loading and saving
//
// [Repository.Load] folds a stream into its state, streaming the events
// from the store. [Aggregate.Record] folds new events into the state and
// queues them; [Repository.Save] appends them with the loaded version as
// the expected version, so a concurrent writer makes it fail with
// [eventstore.ErrConcurrency] and write nothing.
//
// # Commands
//
// [Repository.Update] is a command handler in one call: it loads the
// aggregate, asks a decide function for the events (or an error, which it
// returns wrapped and saves nothing), saves them, and on a concurrency
// conflict loads again and retries, up to Config.MaxAttempts times. Updates
// of one aggregate take turns within the Repository and, over a store that
// can lock streams ([eventstore.StreamLocker], PostgreSQL), across
// processes once the aggregate is contended (see Repository.Update).
//
// Give a command an ID with [WithCommandID] and running it again does
// nothing more and still succeeds: each event's ID is derived from the
// stream, the command ID and the event's index, and the store keeps an
// event ID once. When deciding again fails (withdrawing the same money
// twice), Update looks the command up by its first event's ID, an indexed
// look-up that never reads the stream, and succeeds if it was applied. A
// batch of two or more events is looked up before it is appended, so that
// a repeat deciding more events than the first time cannot add them.
//
// # In a service
//
// [Repository.LoadExisting] and [MustExist] answer [ErrNotFound] for an
// aggregate without events (HTTP 404); an Update that met a conflict on
// every attempt fails with [ErrGaveUp] (503: the stream is contended, try
// again). After Save or Update, [Aggregate.Position] is the global position
// of the events stored: wait for a subscription to reach it to read your
// own write. A command is the causation of its events
// (eventstore.CausationIDKey, holding the command's digest,
// [CommandDigest]), and the context's correlation ID is kept.
// Config.Logger logs retries and give-ups; Config.Hooks lets package
// esotel trace Load, Save and Update.
//
// A command ID is often a client's idempotency key, which may be personal
// data: the store never keeps it. Event IDs are derived from a hash of it,
// and the events' metadata holds its digest ([CommandDigest]), an
// HMAC-SHA256 under Config.CommandKey (set a secret key when command IDs
// can be guessed).
//
// # Snapshots
//
// With Config.SnapshotEvery set to N, a Save whose new version crosses a
// multiple of N stores the encoded state, tagged with Config.SnapshotSchema;
// Load then starts from the newest snapshot and folds only the events after
// it. Change the schema tag whenever S changes shape: snapshots with another
// tag, that fail to decode, or that are past the stream's last event
// ([ErrSnapshotAhead]: stores refuse to save one, but it may be older than
// that rule or written by hand) are ignored (the state is rebuilt from the
// events) and reported as a [*SnapshotError] to Config.OnSnapshotError and
// Config.Logger. Load reads from the snapshot's own event to learn, in the
// same read, that the stream reaches it. A snapshot that fails to save
// never fails the Save that stored the events.
//
// A snapshot keeps what the encoding reaches: with the built-in encodings,
// exported fields and types that marshal themselves. With snapshots on,
// [NewRepository] refuses a state type that would not come back whole (an
// unexported field, a field tagged "-", an interface) with an error naming
// the field; see [codec.CheckState].
package aggregate
