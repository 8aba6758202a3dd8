package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Encoding turns Go values into bytes and back. [Msgpack] is the default;
// [JSON] is the other built-in. Plug your own (protobuf, CBOR, ...) by
// implementing these three methods.
//
// Unmarshal receives a non-nil pointer to the value to fill. An Encoding
// may panic on bad input; the registry recovers and reports the panic as an
// error wrapping [ErrMalformed], so user data never crashes a read.
type Encoding interface {
	// Name identifies the encoding in errors and logs, e.g. "msgpack".
	Name() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
}

// Msgpack is the default [Encoding]: MessagePack through
// github.com/vmihailenco/msgpack/v5. Structs are encoded as maps keyed by
// field name (or `msgpack:"..."` tag), so adding or removing a field keeps
// old events readable.
//
// By default a stored field the Go type lacks is skipped: a renamed field
// decodes as its zero value, silently. Msgpack{DisallowUnknownFields: true}
// makes it an error instead (see the package doc, "Schema evolution").
//
// A registry decodes an event type that is a struct of fields of
// predeclared scalar types only (bool, integers, floats, string: no
// embedded structs, no methods that decode it, no tag options but
// omitempty) without msgpack's reflection, to the same values and errors;
// a type given its own decoder with msgpack.Register should not be such a
// struct.
type Msgpack struct {
	// DisallowUnknownFields makes decoding fail on a map key that names
	// no field of the struct decoded into (msgpack's
	// Decoder.DisallowUnknownFields).
	DisallowUnknownFields bool
}

// Name returns "msgpack".
func (Msgpack) Name() string { return "msgpack" }

// Marshal encodes v as MessagePack.
func (Msgpack) Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

// Unmarshal decodes MessagePack data into the value v points to.
func (m Msgpack) Unmarshal(data []byte, v any) error {
	// msgpack.Unmarshal allocates a bytes.Reader per call; a pooled
	// decoder with its own reader saves that allocation on every event of
	// a Load (BenchmarkLoad in package aggregate).
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.Reset(&d.r) // also clears the decoder's flags
	d.dec.DisallowUnknownFields(m.DisallowUnknownFields)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	msgpackDecoders.Put(d)
	return err
}

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// JSON is the [Encoding] of encoding/json: larger and slower than
// [Msgpack], but readable in the database.
//
// By default a stored field the Go type lacks is skipped: a renamed field
// decodes as its zero value, silently. JSON{DisallowUnknownFields: true}
// makes it an error instead (see the package doc, "Schema evolution").
type JSON struct {
	// DisallowUnknownFields makes decoding fail on an object key that
	// names no field of the struct decoded into (encoding/json's
	// Decoder.DisallowUnknownFields).
	DisallowUnknownFields bool
}

// Name returns "json".
func (JSON) Name() string { return "json" }

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into the value v points to.
func (j JSON) Unmarshal(data []byte, v any) error {
	if !j.DisallowUnknownFields {
		return json.Unmarshal(data, v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// json.Unmarshal refuses data after the value; so does strict mode.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("json: data after the top-level value (offset %d)", dec.InputOffset())
	}
	return nil
}

var (
	_ Encoding = Msgpack{}
	_ Encoding = JSON{}
)

// marshal calls enc.Marshal and turns a panic into an error, so that a
// value an encoding cannot handle is reported rather than crashing.
func marshal(enc Encoding, v any) (data []byte, err error) {
	return marshalContext(context.Background(), enc, v)
}

// marshalContext is marshal with the context passed to a
// [ContextEncoding].
func marshalContext(ctx context.Context, enc Encoding, v any) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("%s encoding panicked: %v", enc.Name(), r)
		}
	}()
	if ce, ok := enc.(ContextEncoding); ok {
		return ce.MarshalContext(ctx, v)
	}
	return enc.Marshal(v)
}

// unmarshal calls enc.Unmarshal and turns a panic into an error: decoding
// reads bytes from the database, which must never crash the reader.
func unmarshal(enc Encoding, data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s decoding panicked: %v", enc.Name(), r)
		}
	}()
	return enc.Unmarshal(data, v)
}

// unmarshalContext is unmarshal with the context passed to a
// [ContextEncoding], for registered events and states: when enc has no key
// store, a decoded [Personal] value is an error (ErrNoKeyStore) rather
// than a value that looks forgotten.
func unmarshalContext(ctx context.Context, enc Encoding, data []byte, v any) (err error) {
	return unmarshalChecked(ctx, enc, data, v, true)
}

// unmarshalChecked is unmarshalContext that looks for unopened [Personal]
// values only when mayHold says v's type can hold one: callers that know
// the type beforehand (a registered event type) save a type lookup per
// value.
func unmarshalChecked(ctx context.Context, enc Encoding, data []byte, v any, mayHold bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s decoding panicked: %v", enc.Name(), r)
		}
	}()
	if pe, ok := enc.(*personalEncoding); ok {
		return pe.UnmarshalContext(ctx, data, v)
	}
	if ce, ok := enc.(ContextEncoding); ok {
		err = ce.UnmarshalContext(ctx, data, v)
	} else {
		err = enc.Unmarshal(data, v)
	}
	if err != nil || !mayHold {
		return err
	}
	return checkOpened(v)
}

// EncodeState encodes a snapshot state with enc (the registry's
// [Registry.Encoding], typically). The aggregate package uses it for
// snapshots. It is [EncodeStateContext] with context.Background().
func EncodeState[S any](enc Encoding, s S) ([]byte, error) {
	return EncodeStateContext(context.Background(), enc, s)
}

// EncodeStateContext is [EncodeState] with a context, passed to enc when
// it is a [ContextEncoding] (a registry's encoding with a key store, whose
// [Personal] fields fetch keys).
func EncodeStateContext[S any](ctx context.Context, enc Encoding, s S) ([]byte, error) {
	data, err := marshalContext(ctx, enc, s)
	if err != nil {
		return nil, fmt.Errorf("codec: encode state %T: %w", s, err)
	}
	return data, nil
}

// DecodeState decodes a snapshot state encoded by [EncodeState]. It never
// panics: bad bytes return an error wrapping [ErrMalformed], a key store
// that fails one wrapping [ErrKeyStore]. [Personal] fields whose subject
// was forgotten decode as redacted, without error. It is
// [DecodeStateContext] with context.Background().
func DecodeState[S any](enc Encoding, data []byte) (S, error) {
	return DecodeStateContext[S](context.Background(), enc, data)
}

// DecodeStateContext is [DecodeState] with a context, passed to enc when it
// is a [ContextEncoding].
func DecodeStateContext[S any](ctx context.Context, enc Encoding, data []byte) (S, error) {
	var s S
	if err := unmarshalContext(ctx, enc, data, &s); err != nil {
		var zero S
		kind := ErrMalformed
		var ke *keyStoreError
		if errors.As(err, &ke) {
			kind = ErrKeyStore
		}
		return zero, fmt.Errorf("codec: decode state %T with %s: %w: %w", zero, enc.Name(), kind, err)
	}
	return s, nil
}
