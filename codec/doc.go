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
// # Encodings
//
// [Msgpack] is the default [Encoding]; [JSON] is the other built-in
// ([WithEncoding]). Any type with Name, Marshal and Unmarshal methods can
// be plugged in. [EncodeState] and [DecodeState] encode snapshot state with
// the same encodings.
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
package codec
