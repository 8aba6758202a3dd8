package codec

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/esv2/esv2/eventstore"
)

// Registry maps the concrete types of an event type E (usually a sealed
// interface) to stable type names and back. Build it once with [New] (a
// zero Registry works too, with [Msgpack]),
// [Register] and [Upcast], then pass it explicitly to whatever needs it
// (there is no package-level registry). It is safe for concurrent use,
// including registering while others encode and decode.
type Registry[E any] struct {
	enc Encoding

	mu  sync.Mutex               // serialises registrations
	tab atomic.Pointer[table[E]] // copy-on-write: decode takes no lock
}

// table is an immutable view of a registry's registrations.
type table[E any] struct {
	decoders map[string]decodeFunc[E] // type name (current or old) -> decoder
	names    map[reflect.Type]string  // concrete Go type -> current name
}

type decodeFunc[E any] func(ctx context.Context, enc Encoding, data []byte) (E, error)

// Option configures a [Registry].
type Option func(*options)

type options struct {
	enc Encoding
	ks  KeyStore
}

// WithEncoding sets the registry's encoding. The default is [Msgpack].
func WithEncoding(enc Encoding) Option { return func(o *options) { o.enc = enc } }

// WithKeyStore gives the registry a key store for [Personal] values: its
// encoding becomes [PersonalEncoding] of the encoding set by
// [WithEncoding] (the order of the options does not matter), so that
// personal fields of events, and of snapshot states encoded with
// [Registry.Encoding], are encrypted with their subjects' keys. Without
// one, encoding or decoding a Personal value fails with [ErrNoKeyStore].
// A nil ks is no key store.
func WithKeyStore(ks KeyStore) Option { return func(o *options) { o.ks = ks } }

// New returns an empty registry for event type E.
func New[E any](opts ...Option) *Registry[E] {
	o := options{enc: Msgpack{}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.enc == nil {
		o.enc = Msgpack{}
	}
	if o.ks != nil {
		o.enc = PersonalEncoding(o.enc, o.ks)
	}
	return &Registry[E]{enc: o.enc}
}

// Encoding returns the registry's encoding, for encoding snapshot state
// with [EncodeState] and [DecodeState]. With [WithKeyStore] it seals and
// opens [Personal] values.
func (r *Registry[E]) Encoding() Encoding {
	if r.enc == nil {
		return Msgpack{}
	}
	return r.enc
}

// table returns the current registrations; a zero Registry has none.
func (r *Registry[E]) table() *table[E] {
	if t := r.tab.Load(); t != nil {
		return t
	}
	return &table[E]{} // nil maps: lookups find nothing
}

// Register registers the concrete event type T of E under name, which is
// what the store keeps and must therefore never change. T must implement
// E (register *T when E's methods have pointer receivers). E is inferred
// from r:
//
//	codec.Register[Deposited](reg, "account.deposited")
//
// Registering a name or a type twice returns an error wrapping
// [ErrDuplicate], and a T that is not an E one wrapping [ErrNotRegistered];
// the registry is then unchanged. Combine several calls with errors.Join.
func Register[T, E any](r *Registry[E], name string) error {
	if err := checkImplements[T, E](name); err != nil {
		return err
	}
	plan := newPlan[T]()
	return r.add(name, reflect.TypeFor[T](), func(ctx context.Context, enc Encoding, data []byte) (E, error) {
		t, err := decodeValue[T](ctx, enc, data, plan)
		if err != nil {
			var zero E
			return zero, err
		}
		e, _ := any(t).(E) // checked by checkImplements
		return e, nil
	})
}

// plan is what decoding a registered type needs to know of it, worked
// out once when it is registered.
type plan struct {
	flat     *flatStruct // nil when the type has none
	personal bool        // mayHold: its values can hold a Personal
}

func newPlan[T any]() plan {
	t := reflect.TypeFor[T]()
	return plan{flat: newFlatStruct(t), personal: mayHold(reflect.PointerTo(t))}
}

// decodeValue decodes data into a T with enc: with [Msgpack], through
// p.flat when T has one (see flatStruct) and it takes data.
func decodeValue[T any](ctx context.Context, enc Encoding, data []byte, p plan) (T, error) {
	var t T
	if flat := p.flat; flat != nil && plainMsgpack(enc) {
		// t does not escape here, so a decoded event costs one
		// allocation fewer than through msgpack (its interface box
		// is the only one, with its strings').
		if flat.decode(data, unsafe.Pointer(&t)) {
			return t, nil
		}
		var zero T
		t = zero
	}
	v := new(T)
	err := unmarshalChecked(ctx, enc, data, v, p.personal)
	return *v, err
}

// plainMsgpack reports whether enc is the Msgpack encoding itself, which
// flatStruct stands in for (not one wrapped, for Personal values).
func plainMsgpack(enc Encoding) bool {
	switch m := enc.(type) {
	case Msgpack:
		return true
	case *Msgpack:
		return m != nil
	}
	return false
}

// Upcast makes events stored under an old type name readable as current
// events: their bytes are decoded into Old (the type as it was) and
// converted by up. Use it when a type is renamed or its shape changes (give
// the new shape a new name and upcast the old one), so history is never
// rewritten. Events are always written under their current name.
//
//	codec.Upcast(reg, "account.credited", func(old CreditedV1) (AccountEvent, error) {
//		return Deposited{Amount: old.Cents}, nil
//	})
//
// An oldName already registered or upcast returns an error wrapping
// [ErrDuplicate]. Errors returned by up reach the reader wrapped in a
// [*DecodeError] with Kind [ErrUpcast].
func Upcast[Old, E any](r *Registry[E], oldName string, up func(Old) (E, error)) error {
	if up == nil {
		return fmt.Errorf("codec: upcast %q: nil function", oldName)
	}
	plan := newPlan[Old]()
	return r.add(oldName, nil, func(ctx context.Context, enc Encoding, data []byte) (E, error) {
		old, err := decodeValue[Old](ctx, enc, data, plan)
		if err != nil {
			var zero E
			return zero, err
		}
		e, err := up(old)
		if err != nil {
			return e, &upcastError{err}
		}
		return e, nil
	})
}

// upcastError marks an error returned by an upcaster, as opposed to one of
// the encoding.
type upcastError struct{ err error }

func (e *upcastError) Error() string { return e.err.Error() }
func (e *upcastError) Unwrap() error { return e.err }

func checkImplements[T, E any](name string) error {
	var t T
	if _, ok := any(t).(E); !ok {
		return fmt.Errorf("codec: register %q: %v does not implement %v: %w",
			name, reflect.TypeFor[T](), reflect.TypeFor[E](), ErrNotRegistered)
	}
	return nil
}

// add registers a decoder under name and, when typ is not nil, typ's
// current name, replacing the table so that readers never lock.
func (r *Registry[E]) add(name string, typ reflect.Type, dec decodeFunc[E]) error {
	if name == "" || len(name) > eventstore.MaxIDLength || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("codec: register %q: a type name must be 1 to %d bytes of UTF-8 without NUL", name, eventstore.MaxIDLength)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.table()
	if _, dup := old.decoders[name]; dup {
		return fmt.Errorf("codec: register %q: name already registered: %w", name, ErrDuplicate)
	}
	if prev, dup := old.names[typ]; typ != nil && dup {
		return fmt.Errorf("codec: register %q: %v is already registered as %q: %w", name, typ, prev, ErrDuplicate)
	}
	tab := &table[E]{
		decoders: make(map[string]decodeFunc[E], len(old.decoders)+1),
		names:    make(map[reflect.Type]string, len(old.names)+1),
	}
	for k, v := range old.decoders {
		tab.decoders[k] = v
	}
	for k, v := range old.names {
		tab.names[k] = v
	}
	tab.decoders[name] = dec
	if typ != nil {
		tab.names[typ] = name
	}
	r.tab.Store(tab)
	return nil
}

// Name returns the registered type name of e's concrete type.
func (r *Registry[E]) Name(e E) (string, bool) {
	name, ok := r.table().names[reflect.TypeOf(e)]
	return name, ok
}

// Encode returns e's type name and encoded bytes. An event whose concrete
// type was not registered (or a nil event) returns an error wrapping
// [ErrNotRegistered]. It is [Registry.EncodeContext] with
// context.Background().
func (r *Registry[E]) Encode(e E) (typ string, data []byte, err error) {
	return r.EncodeContext(context.Background(), e)
}

// EncodeContext is [Registry.Encode] with a context, which a registry with
// a key store ([WithKeyStore]) passes to it to seal [Personal] fields.
func (r *Registry[E]) EncodeContext(ctx context.Context, e E) (typ string, data []byte, err error) {
	name, ok := r.Name(e)
	if !ok {
		return "", nil, fmt.Errorf("codec: encode %T: %w", e, ErrNotRegistered)
	}
	data, err = marshalContext(ctx, r.Encoding(), e)
	if err != nil {
		return "", nil, fmt.Errorf("codec: encode %q: %w", name, err)
	}
	return name, data, nil
}

// Event encodes e into an [eventstore.Event] ready to append (Type and
// Data set, the other fields left for the caller).
func (r *Registry[E]) Event(e E) (eventstore.Event, error) {
	return r.EventContext(context.Background(), e)
}

// EventContext is [Registry.Event] with a context; see
// [Registry.EncodeContext].
func (r *Registry[E]) EventContext(ctx context.Context, e E) (eventstore.Event, error) {
	typ, data, err := r.EncodeContext(ctx, e)
	return eventstore.Event{Type: typ, Data: data}, err
}

// Decode decodes data stored under type name typ. It never panics: an
// unknown name or bytes that do not decode return a [*DecodeError], as
// does a key store that fails (Kind [ErrKeyStore]). [Personal] fields
// whose subject was forgotten decode as redacted, without error.
func (r *Registry[E]) Decode(typ string, data []byte) (E, error) {
	return r.DecodeContext(context.Background(), typ, data)
}

// DecodeContext is [Registry.Decode] with a context, which a registry with
// a key store passes to it to open [Personal] fields.
func (r *Registry[E]) DecodeContext(ctx context.Context, typ string, data []byte) (E, error) {
	dec, ok := r.table().decoders[typ]
	if !ok {
		var zero E
		return zero, &DecodeError{Type: typ, Kind: ErrUnknownType}
	}
	e, err := dec(ctx, r.Encoding(), data)
	if err != nil {
		var zero E
		return zero, decodeError(typ, err)
	}
	return e, nil
}

// decodeError describes a decoder's failure on an event of type name typ.
func decodeError(typ string, err error) *DecodeError {
	kind := ErrMalformed
	var u *upcastError
	var k *keyStoreError
	switch {
	case errors.As(err, &u):
		kind, err = ErrUpcast, u.err
	case errors.As(err, &k):
		kind = ErrKeyStore
	}
	return &DecodeError{Type: typ, Kind: kind, Cause: err}
}

// DecodeRecorded decodes a stored event. Its errors are like those of
// [Registry.Decode] and also name the event's stream and version.
func (r *Registry[E]) DecodeRecorded(rec *eventstore.Recorded) (E, error) {
	return r.DecodeRecordedContext(context.Background(), rec)
}

// DecodeRecordedContext is [Registry.DecodeRecorded] with a context; see
// [Registry.DecodeContext].
func (r *Registry[E]) DecodeRecordedContext(ctx context.Context, rec *eventstore.Recorded) (E, error) {
	e, err := r.DecodeContext(ctx, rec.Type, rec.Data)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.StreamID, de.Version = rec.StreamID, rec.Version
		}
	}
	return e, err
}
