package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Test for them with errors.Is; decoding errors are
// [*DecodeError] values that unwrap to one of them.
var (
	// ErrUnknownType reports an event type name that is neither registered
	// nor upcast.
	ErrUnknownType = errors.New("codec: unknown event type")
	// ErrMalformed reports bytes the encoding could not decode into the
	// registered type.
	ErrMalformed = errors.New("codec: malformed data")
	// ErrUpcast reports an upcaster that returned an error.
	ErrUpcast = errors.New("codec: upcast failed")
	// ErrDuplicate reports a second registration of a type name or Go type.
	ErrDuplicate = errors.New("codec: duplicate registration")
	// ErrNotRegistered reports an event whose Go type was never
	// registered, or a type that does not implement the registry's event
	// type.
	ErrNotRegistered = errors.New("codec: type not registered")
	// ErrState reports a state type that an encoding cannot snapshot
	// faithfully; see [CheckState].
	ErrState = errors.New("codec: state does not survive encoding")
)

// DecodeError describes an event that could not be decoded. It unwraps to
// one of [ErrUnknownType], [ErrMalformed], [ErrUpcast] or [ErrKeyStore],
// and to the encoding's (or key store's) own error when there is one.
type DecodeError struct {
	// StreamID and Version locate the event; they are empty when the
	// caller decoded bare bytes with [Registry.Decode].
	StreamID string
	Version  uint64
	// Type is the stored type name.
	Type string
	// Kind is ErrUnknownType, ErrMalformed, ErrUpcast or ErrKeyStore.
	Kind error
	// Cause is the encoding's or upcaster's error, or nil.
	Cause error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("codec: decode")
	if e.StreamID != "" {
		fmt.Fprintf(&b, " stream %q version %d", e.StreamID, e.Version)
	}
	fmt.Fprintf(&b, " type %q: %s", e.Type, strings.TrimPrefix(e.Kind.Error(), "codec: "))
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns Kind and, when set, Cause.
func (e *DecodeError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}
