package codec

import (
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// flatStruct decodes MessagePack maps into a struct type whose fields all
// have predeclared scalar types (bool, the integers, the floats, string)
// without msgpack's reflection: Repository.Load decodes every event of a
// stream, and for such small events msgpack's per-value work (two sync.Map
// lookups of the type's decoder and fields, a reader interface call per
// byte read, the decoded value escaping to the heap) was most of the
// decoding, itself a fifth of a Load on SQLite (BenchmarkLoadSides in
// cmd/esbench).
//
// It takes only input whose meaning it knows to be msgpack's: a map
// (fixmap, map16, map32) whose keys are strings naming fields and whose
// values have the codes msgpack decodes into the field's kind; anything
// else (nil, an unknown key, which msgpack skips or refuses, an array, an
// extension, truncated bytes) makes decode report false, and the caller
// decodes the same bytes again with msgpack, from a zero value. Values it
// takes are converted as msgpack converts them (reflect's SetInt, SetUint
// and SetFloat: truncation to the field's size). Strings are copied out of
// the data, never aliased.
type flatStruct struct {
	fields []flatField
}

type flatField struct {
	name   string
	kind   reflect.Kind
	offset uintptr
}

var (
	customDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshalerType       = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// predeclared holds the scalar types flatStruct decodes, by kind: only
// the predeclared types themselves, which no one can give methods to.
var predeclared = map[reflect.Kind]reflect.Type{
	reflect.Bool: reflect.TypeFor[bool](), reflect.String: reflect.TypeFor[string](),
	reflect.Int: reflect.TypeFor[int](), reflect.Int8: reflect.TypeFor[int8](), reflect.Int16: reflect.TypeFor[int16](),
	reflect.Int32: reflect.TypeFor[int32](), reflect.Int64: reflect.TypeFor[int64](),
	reflect.Uint: reflect.TypeFor[uint](), reflect.Uint8: reflect.TypeFor[uint8](), reflect.Uint16: reflect.TypeFor[uint16](),
	reflect.Uint32: reflect.TypeFor[uint32](), reflect.Uint64: reflect.TypeFor[uint64](),
	reflect.Float32: reflect.TypeFor[float32](), reflect.Float64: reflect.TypeFor[float64](),
}

// newFlatStruct returns the decoder of t, or nil when t is not a struct
// that msgpack decodes by its default rules with only fields of the
// predeclared scalar types: a type (or its pointer) that decodes itself,
// an embedded field, a field of another type, a tag with an option other
// than omitempty (as_array, inline, intern, alias) or a name that is not
// plain, or two fields of one name.
func newFlatStruct(t reflect.Type) *flatStruct {
	if t.Kind() != reflect.Struct {
		return nil
	}
	for _, it := range []reflect.Type{customDecoderType, unmarshalerType, binaryUnmarshalerType, textUnmarshalerType} {
		if t.Implements(it) || reflect.PointerTo(t).Implements(it) {
			return nil
		}
	}
	fs := &flatStruct{}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous || f.Name == "_msgpack" {
			return nil
		}
		if !f.IsExported() {
			continue // msgpack neither encodes nor decodes it
		}
		name, ok := plainTag(f.Tag.Get("msgpack"))
		if !ok {
			return nil
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if predeclared[f.Type.Kind()] != f.Type || seen[name] {
			return nil
		}
		seen[name] = true
		fs.fields = append(fs.fields, flatField{name: name, kind: f.Type.Kind(), offset: f.Offset})
	}
	return fs
}

// plainTag returns the name of a msgpack struct tag that is empty, "-", or
// a name of letters, digits and underscores, optionally followed by
// ",omitempty" (which only encoding reads); ok is false for other tags.
func plainTag(tag string) (name string, ok bool) {
	if tag == "-" {
		return tag, true
	}
	if len(tag) >= len(",omitempty") && tag[len(tag)-len(",omitempty"):] == ",omitempty" {
		tag = tag[:len(tag)-len(",omitempty")]
	}
	for _, c := range []byte(tag) {
		if c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return "", false
		}
	}
	return tag, true
}

// decode decodes data into the struct at p (of the type fs was made for,
// zero) and reports whether it could; when it could not, *p may be half
// filled and must be zeroed before decoding data otherwise.
func (fs *flatStruct) decode(data []byte, p unsafe.Pointer) bool {
	r := flatReader{b: data}
	c, ok := r.byte()
	if !ok {
		return false
	}
	var n int
	switch {
	case c >= 0x80 && c <= 0x8f: // fixmap
		n = int(c & 0x0f)
	case c == 0xde: // map16
		v, ok := r.uint(2)
		if !ok {
			return false
		}
		n = int(v)
	case c == 0xdf: // map32
		v, ok := r.uint(4)
		if !ok {
			return false
		}
		n = int(v)
	default:
		return false
	}
	for range n {
		key, ok := r.str()
		if !ok {
			return false
		}
		var f *flatField
		for i := range fs.fields {
			if fs.fields[i].name == string(key) {
				f = &fs.fields[i]
				break
			}
		}
		if f == nil || !r.value(f.kind, unsafe.Add(p, f.offset)) {
			return false
		}
	}
	return true
}

// flatReader reads MessagePack from b.
type flatReader struct {
	b []byte
}

func (r *flatReader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

// uint reads a big-endian unsigned integer of size bytes (1, 2, 4 or 8).
func (r *flatReader) uint(size int) (uint64, bool) {
	if len(r.b) < size {
		return 0, false
	}
	var v uint64
	switch size {
	case 1:
		v = uint64(r.b[0])
	case 2:
		v = uint64(binary.BigEndian.Uint16(r.b))
	case 4:
		v = uint64(binary.BigEndian.Uint32(r.b))
	default:
		v = binary.BigEndian.Uint64(r.b)
	}
	r.b = r.b[size:]
	return v, true
}

// str reads a string or binary value (msgpack's bytesLen takes both for a
// string), not nil; the bytes returned alias r's.
func (r *flatReader) str() ([]byte, bool) {
	c, ok := r.byte()
	if !ok {
		return nil, false
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf: // fixstr
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4: // str8, bin8
		n, ok = r.uint(1)
	case c == 0xda || c == 0xc5: // str16, bin16
		n, ok = r.uint(2)
	case c == 0xdb || c == 0xc6: // str32, bin32
		n, ok = r.uint(4)
	default:
		return nil, false
	}
	if !ok || uint64(len(r.b)) < n {
		return nil, false
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s, true
}

// int reads an integer as msgpack's Decoder.int does, except nil.
func (r *flatReader) int() (int64, bool) {
	c, ok := r.byte()
	if !ok {
		return 0, false
	}
	return r.intCode(c)
}

func (r *flatReader) intCode(c byte) (int64, bool) {
	if c <= 0x7f || c >= 0xe0 { // positive and negative fixint
		return int64(int8(c)), true
	}
	switch c {
	case 0xcc: // uint8
		v, ok := r.uint(1)
		return int64(v), ok
	case 0xd0: // int8
		v, ok := r.uint(1)
		return int64(int8(v)), ok
	case 0xcd: // uint16
		v, ok := r.uint(2)
		return int64(v), ok
	case 0xd1: // int16
		v, ok := r.uint(2)
		return int64(int16(v)), ok
	case 0xce: // uint32
		v, ok := r.uint(4)
		return int64(v), ok
	case 0xd2: // int32
		v, ok := r.uint(4)
		return int64(int32(v)), ok
	case 0xcf, 0xd3: // uint64, int64
		v, ok := r.uint(8)
		return int64(v), ok
	}
	return 0, false
}

// uintValue reads an integer as msgpack's Decoder.uint does, except nil:
// signed codes are sign-extended.
func (r *flatReader) uintValue() (uint64, bool) {
	c, ok := r.byte()
	if !ok {
		return 0, false
	}
	if c <= 0x7f || c >= 0xe0 {
		return uint64(int8(c)), true
	}
	switch c {
	case 0xcc:
		return r.uint(1)
	case 0xd0:
		v, ok := r.uint(1)
		return uint64(int8(v)), ok
	case 0xcd:
		return r.uint(2)
	case 0xd1:
		v, ok := r.uint(2)
		return uint64(int16(v)), ok
	case 0xce:
		return r.uint(4)
	case 0xd2:
		v, ok := r.uint(4)
		return uint64(int32(v)), ok
	case 0xcf, 0xd3:
		return r.uint(8)
	}
	return 0, false
}

// float reads a float as msgpack's Decoder.float64 (double) or float32
// does, integers included, except nil.
func (r *flatReader) float(double bool) (float64, bool) {
	c, ok := r.byte()
	if !ok {
		return 0, false
	}
	switch c {
	case 0xca: // float32
		v, ok := r.uint(4)
		return float64(math.Float32frombits(uint32(v))), ok
	case 0xcb: // float64
		if !double {
			return 0, false // msgpack's float32 refuses it
		}
		v, ok := r.uint(8)
		return math.Float64frombits(v), ok
	}
	n, ok := r.intCode(c)
	if !double {
		return float64(float32(n)), ok
	}
	return float64(n), ok
}

// value reads a value of kind k into the field at p.
func (r *flatReader) value(k reflect.Kind, p unsafe.Pointer) bool {
	switch k {
	case reflect.String:
		s, ok := r.str()
		if ok {
			*(*string)(p) = string(s)
		}
		return ok
	case reflect.Bool:
		c, ok := r.byte()
		if !ok || (c != 0xc2 && c != 0xc3) {
			return false
		}
		*(*bool)(p) = c == 0xc3
		return true
	case reflect.Float32:
		f, ok := r.float(false)
		*(*float32)(p) = float32(f)
		return ok
	case reflect.Float64:
		f, ok := r.float(true)
		*(*float64)(p) = f
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := r.int()
		switch k {
		case reflect.Int:
			*(*int)(p) = int(n)
		case reflect.Int8:
			*(*int8)(p) = int8(n)
		case reflect.Int16:
			*(*int16)(p) = int16(n)
		case reflect.Int32:
			*(*int32)(p) = int32(n)
		default:
			*(*int64)(p) = n
		}
		return ok
	default: // the unsigned kinds: newFlatStruct takes no others
		n, ok := r.uintValue()
		switch k {
		case reflect.Uint:
			*(*uint)(p) = uint(n)
		case reflect.Uint8:
			*(*uint8)(p) = uint8(n)
		case reflect.Uint16:
			*(*uint16)(p) = uint16(n)
		case reflect.Uint32:
			*(*uint32)(p) = uint32(n)
		default:
			*(*uint64)(p) = n
		}
		return ok
	}
}
