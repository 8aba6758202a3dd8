package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// StateError reports a state type that an [Encoding] cannot snapshot
// faithfully: decoding what it encodes would not give the same state back.
// It unwraps to [ErrState].
type StateError struct {
	// Type is the state type, e.g. "main.Account".
	Type string
	// Field is the path of the offending field from the state type, e.g.
	// "Owner.address" or "Lines[].note"; empty when the problem is the
	// whole value.
	Field string
	// Reason says what is wrong.
	Reason string
}

func (e *StateError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("codec: state %s: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("codec: state %s: field %s: %s", e.Type, e.Field, e.Reason)
}

// Unwrap returns ErrState.
func (e *StateError) Unwrap() error { return ErrState }

// CheckState reports whether enc can snapshot values of S faithfully, so
// that a state decoded from a snapshot is the state that was encoded. A
// state type with an unexported field (struct{ n int }) encodes without
// error and decodes as its zero value: a snapshot silently loses it
// (issue 9 item 8). CheckState returns a [*StateError] naming the field.
//
// For [Msgpack] and [JSON] it walks S's type through structs, pointers,
// slices, arrays and maps, and refuses unexported fields, fields the
// encoding skips by tag (`msgpack:"-"`, `json:"-"`), interfaces (their
// dynamic type cannot be restored) and channels and functions, and
// [Personal] fields unless enc has a key store ([PersonalEncoding], or the
// Encoding of a registry made with [WithKeyStore]). A type with
// its own marshaling for that encoding (msgpack.CustomEncoder,
// msgpack.Marshaler, json.Marshaler, encoding.BinaryMarshaler or
// encoding.TextMarshaler, as the encoding honours them; time.Time among
// them) is taken as it is. For any encoding it then encodes the zero S
// and each of samples (an aggregate's initial state, say), decodes them
// and compares the result field by field with what was encoded; this
// round trip is the only check for other encodings.
func CheckState[S any](enc Encoding, samples ...S) error {
	typ := reflect.TypeFor[S]()
	var rules *encodingRules
	inner := enc
	if pe, ok := enc.(*personalEncoding); ok {
		inner = pe.c.enc // Personal fields marshal themselves
	}
	switch inner.(type) {
	case Msgpack, *Msgpack:
		rules = &msgpackRules
	case JSON, *JSON:
		rules = &jsonRules
	}
	_, sealing := enc.(*personalEncoding)
	if rules != nil {
		c := stateChecker{rules: rules, root: typ.String(), seen: make(map[reflect.Type]bool), personalOK: sealing}
		if err := c.walk(typ, ""); err != nil {
			return err
		}
	}
	var zero S
	for _, s := range append([]S{zero}, samples...) {
		data, err := marshal(enc, s)
		if err != nil {
			return &StateError{Type: typ.String(), Reason: fmt.Sprintf("%s cannot encode it: %v", enc.Name(), err)}
		}
		var back S
		if err := unmarshal(enc, data, &back); err != nil {
			return &StateError{Type: typ.String(), Reason: fmt.Sprintf("%s cannot decode what it encoded: %v", enc.Name(), err)}
		}
		if path, ok := sameState(enc, reflect.ValueOf(&s).Elem(), reflect.ValueOf(&back).Elem(), ""); !ok {
			return &StateError{Type: typ.String(), Field: strings.TrimPrefix(path, "."),
				Reason: fmt.Sprintf("does not survive a %s round trip", enc.Name())}
		}
	}
	return nil
}

// encodingRules says which types marshal themselves and which struct tag
// can skip a field, for one built-in encoding.
type encodingRules struct {
	name       string
	marshalers []reflect.Type
	skipped    func(reflect.StructTag) bool
}

var (
	msgpackRules = encodingRules{
		name: "msgpack",
		marshalers: []reflect.Type{
			reflect.TypeFor[msgpack.CustomEncoder](), reflect.TypeFor[msgpack.Marshaler](),
			reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.TextMarshaler](),
		},
		skipped: func(tag reflect.StructTag) bool {
			name, _, _ := strings.Cut(tag.Get("msgpack"), ",")
			return name == "-"
		},
	}
	jsonRules = encodingRules{
		name:       "json",
		marshalers: []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[encoding.TextMarshaler]()},
		skipped:    func(tag reflect.StructTag) bool { return tag.Get("json") == "-" },
	}
)

// marshalsItself reports whether t (or *t) has its own marshaling.
func (r *encodingRules) marshalsItself(t reflect.Type) bool {
	for _, m := range r.marshalers {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

type stateChecker struct {
	rules *encodingRules
	root  string
	seen  map[reflect.Type]bool
	// personalOK: the encoding has a key store, so Personal fields are
	// sealed; without one, every snapshot of a state holding personal
	// data would fail to encode.
	personalOK bool
}

func (c *stateChecker) fail(path, format string, args ...any) error {
	return &StateError{Type: c.root, Field: strings.TrimPrefix(path, "."), Reason: fmt.Sprintf(format, args...)}
}

func (c *stateChecker) walk(t reflect.Type, path string) error {
	if t.Kind() == reflect.Struct && t.Implements(personalType) {
		if !c.personalOK {
			return c.fail(path, "personal data (%s): the encoding has no key store, so a snapshot cannot be encoded; encode snapshots with the registry's Encoding (codec.WithKeyStore) or codec.PersonalEncoding", t)
		}
		return nil
	}
	if c.rules.marshalsItself(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.walk(t.Elem(), path)
	case reflect.Slice, reflect.Array:
		return c.walk(t.Elem(), path+"[]")
	case reflect.Map:
		if err := c.walk(t.Key(), path+"[key]"); err != nil {
			return err
		}
		return c.walk(t.Elem(), path+"[value]")
	case reflect.Interface:
		return c.fail(path, "an interface (%s): a snapshot cannot restore the type of its value; give the field a concrete type or a custom marshaler", t)
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return c.fail(path, "a %s cannot be encoded", t.Kind())
	case reflect.Struct:
		if c.seen[t] {
			return nil // a recursive type: checked on the first visit
		}
		c.seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			fpath := path + "." + f.Name
			switch {
			case c.rules.skipped(f.Tag):
				return c.fail(fpath, "tagged %q: %s does not encode it, so a snapshot loses it", f.Tag, c.rules.name)
			case f.Anonymous && !f.IsExported():
				// The exported fields of an embedded unexported struct
				// are promoted and encoded; anything else is lost.
				if f.Type.Kind() != reflect.Struct {
					return c.fail(fpath, "unexported: %s does not restore it, so a snapshot loses it; export it or give the type a custom marshaler", c.rules.name)
				}
				if err := c.walk(f.Type, fpath); err != nil {
					return err
				}
			case !f.IsExported():
				return c.fail(fpath, "unexported: %s does not encode it, so a snapshot loses it; export it or give the type a custom marshaler", c.rules.name)
			default:
				if err := c.walk(f.Type, fpath); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sameState compares a state with its round trip and returns the path of
// the first difference. Unlike reflect.DeepEqual it takes a nil and an
// empty slice or map as equal, and compares values that marshal
// themselves (time.Time, with its location and monotonic reading) by
// their encoding, as a snapshot can only keep what is encoded.
func sameState(enc Encoding, a, b reflect.Value, path string) (string, bool) {
	if a.Type() != b.Type() {
		return path, false
	}
	if a.CanInterface() && a.Kind() != reflect.Interface && a.Kind() != reflect.Pointer && selfMarshaling(a.Type()) {
		da, errA := marshal(enc, addr(a))
		db, errB := marshal(enc, addr(b))
		return path, errA == nil && errB == nil && bytes.Equal(da, db)
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return path, a.IsNil() == b.IsNil()
		}
		return sameState(enc, a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if p, ok := sameState(enc, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); !ok {
				return p, false
			}
		}
		return path, true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return path, false
		}
		for i := range a.Len() {
			if p, ok := sameState(enc, a.Index(i), b.Index(i), path+"[]"); !ok {
				return p, false
			}
		}
		return path, true
	case reflect.Map:
		if a.Len() != b.Len() {
			return path, false
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() {
				return path + "[key]", false
			}
			if p, ok := sameState(enc, it.Value(), bv, path+"[value]"); !ok {
				return p, false
			}
		}
		return path, true
	case reflect.Bool:
		return path, a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return path, a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return path, a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return path, x == y || (math.IsNaN(x) && math.IsNaN(y))
	case reflect.Complex64, reflect.Complex128:
		return path, a.Complex() == b.Complex()
	case reflect.String:
		return path, a.String() == b.String()
	default: // chan, func, unsafe pointer: only nil survives
		return path, a.IsNil() && b.IsNil()
	}
}

// addr returns a pointer to v when it has one, so that a marshaler with a
// pointer receiver is found, else v.
func addr(v reflect.Value) any {
	if v.CanAddr() {
		return v.Addr().Interface()
	}
	return v.Interface()
}

// selfMarshaling reports whether t marshals itself for any encoding this
// package knows, so that its encoding, not its fields, is what a snapshot
// keeps.
func selfMarshaling(t reflect.Type) bool {
	return msgpackRules.marshalsItself(t) || jsonRules.marshalsItself(t)
}
