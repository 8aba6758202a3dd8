// Package codec turns typed events into the (type name, bytes) pairs an
// [eventstore.Store] keeps, and back, without reflection or `any` in user
// code.
//
// # Registering events
//
// An aggregate's events are usually a sealed interface implemented by small
// structs. A [Registry] for that interface maps each concrete type to a
// stable name, once:
//
//	type AccountEvent interface{ isAccountEvent() }
//	type Deposited struct{ Amount int64 }
//	func (Deposited) isAccountEvent() {}
//
//	reg := codec.New[AccountEvent]()
//	err := errors.Join(
//		codec.Register[Opened](reg, "account.opened"),
//		codec.Register[Deposited](reg, "account.deposited"),
//	)
//
// The compiler checks that the registry is used with AccountEvent values;
// [Register] checks that each type implements AccountEvent and that no name
// or type is registered twice ([ErrDuplicate]). There is no package-level
// registry: pass the registry to whatever needs it.
//
// # Consuming several aggregates
//
// A consumer of all streams (a read model, a subscription's handler) reads
// the events of several aggregates, each with its own registry. A [Router]
// built once from those registries decodes any of their events by its
// stored type name, after upcasting, into the Go type registered for it,
// so that the handler is a type switch:
//
//	events, err := codec.NewRouter(accountEvents, transferEvents)
//	...
//	ev, err := events.Decode(rec)
//	if err != nil {
//		return err // unknown type, bad bytes: the handler's error, not a skip
//	}
//	switch ev := ev.(type) {
//	case Deposited:
//		...
//	case Sent:
//		...
//	}
//
// The cases are the types as registered: a Register[*Moved] event arrives
// as a *Moved, and a `case Moved` would never match. A type name two of
// the registries decode is refused with [ErrDuplicate]; names registered
// after [NewRouter] are routed too.
//
// # Encodings
//
// [Msgpack] is the default [Encoding]; [JSON] is the other built-in
// ([WithEncoding]). Any type with Name, Marshal and Unmarshal methods can
// be plugged in. [EncodeState] and [DecodeState] encode snapshot state with
// the same encodings.
//
// # Personal data (crypto-shredding)
//
// An event log is append-only, yet a data subject (a customer, a user) may
// ask to be forgotten. Mark the fields that hold personal data with
// [Personal], naming the subject each value belongs to:
//
//	type Registered struct {
//		CustomerID string                 // the subject's pseudonymous ID: not personal
//		Email      codec.Personal[string] // personal data of that subject
//	}
//	Registered{CustomerID: id, Email: codec.NewPersonal(id, "ann@example.com")}
//
// and give the registry a [KeyStore] with [WithKeyStore]; the adapters keep
// the keys in the event store's own database:
//
//	reg := codec.New[Event](codec.WithKeyStore(store.KeyStore()))
//
// Encoding then seals each Personal value with its subject's key (created
// on first use): AES-256-GCM from the standard library, a random nonce per
// value, the subject ID authenticated with it, so that a value cannot be
// moved to another subject. Decoding opens it. Snapshot states encoded
// with [Registry.Encoding] (as the aggregate package does) are sealed the
// same way. [KeyStore].Forget deletes the subject's key, and from then on
// the subject's values decode as redacted: [Personal.Redacted] reports
// true and [Personal.Value] returns the zero value, without error, so that
// aggregates still load (from events or snapshots) and subscriptions keep
// running. The events are never rewritten: their ciphertext stays, and no
// one can read it any more. This is crypto-shredding.
//
// What it guarantees, and what it does not:
//   - Personal values never reach the database in plain text, in events or
//     in snapshots; the subject ID, which names the key, does: use a
//     pseudonymous ID, never an e-mail address.
//   - After Forget and the database's housekeeping (SQLite: PRAGMA
//     wal_checkpoint(TRUNCATE); PostgreSQL: VACUUM FULL on subject_keys;
//     see each adapter's KeyStore), the key is gone from the database's
//     files. Backups, replicas, and copies made before (exports, logs of
//     decoded events, read models built from them) still hold the key or
//     the plain values: delete or rebuild them too.
//   - A key store that fails (its database is down) is an error wrapping
//     [ErrKeyStore], never a redacted value; a registry without a key store
//     refuses to encode or decode a Personal value ([ErrNoKeyStore]), so
//     that a misconfigured reader is not taken for a forgotten subject.
//   - Keys are cached ([KeyCache]) for a minute: a Forget through the same
//     key store is seen at once, another process's when its cache expires.
//
// Which fields are personal is the application's decision; mark them when
// the event type is first written, since old events whose fields were not
// marked hold the plain values and are not rewritten. Keep personal data
// in Personal fields in aggregate states too: a state that copies
// p.Value() into a plain string stores it in plain text in its snapshots.
//
// # Decoding errors
//
// Decoding reads what the database holds and never panics, whatever the
// bytes. An unknown type name returns a [*DecodeError] that unwraps to
// [ErrUnknownType]; bytes that do not decode (or an encoding that panics on
// them) one that unwraps to [ErrMalformed]. [Registry.DecodeRecorded] fills
// in the stream and version so the error says where the bad event is.
//
// # Schema evolution
//
// Stored events are never rewritten. When an event type is renamed or its
// shape changes, give the current shape its own name and register an
// upcaster for the old one with [Upcast]: events stored under the old name
// are decoded into the old Go type and converted to a current event on
// read. Adding or removing a struct field needs no upcaster: both built-in
// encodings key struct fields by name and ignore unknown ones.
//
// Renaming a field is where that leniency bites. By default the old events
// still carry the old key, which no field has any more, so the renamed
// field decodes as its zero value, silently, in events and snapshot states
// alike, with msgpack and JSON alike. There are two clean renames: keep the
// stored key with a tag (`msgpack:"Amount" json:"Amount"`), or give the new
// shape a new type name and [Upcast] the old name from a Go type that keeps
// the old field. To make a forgotten upcaster fail a test rather than
// corrupt a read, decode strictly: with
//
//	codec.New[AccountEvent](codec.WithEncoding(codec.Msgpack{DisallowUnknownFields: true}))
//
// (or [JSON] with DisallowUnknownFields) a stored key that names no field
// of the type decoded into is an error: a [*DecodeError] wrapping
// [ErrMalformed] for an event, a decode error for a snapshot state, which
// the aggregate package reports and then rebuilds from events. An upcast
// old name decodes into its old Go type, so strict mode accepts its events;
// only data whose shape no registered type describes fails. Strict mode
// also refuses fields removed from a type on purpose: run it in tests over
// stored data, or keep removed fields in an old type behind an upcaster.
package codec
