package codec

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// flatAll has a field of every kind flatStruct decodes, tags it reads,
// and fields msgpack ignores.
type flatAll struct {
	B      bool
	I      int
	I8     int8
	I16    int16
	I32    int32
	I64    int64
	U      uint
	U8     uint8
	U16    uint16
	U32    uint32
	U64    uint64
	F32    float32
	F64    float64
	S      string `msgpack:"s,omitempty"`
	Tagged string `msgpack:",omitempty"`
	Skip   string `msgpack:"-"`
	hidden int    //nolint:unused // msgpack skips unexported fields, and so must flat
}

var flatAllKeys = []string{"B", "I", "I8", "I16", "I32", "I64", "U", "U8", "U16", "U32", "U64", "F32", "F64", "s", "Tagged"}

type (
	flatCustom   struct{ N int }
	flatEmbedded struct{ flatCustom }
	flatNamed    struct{ N myInt }
	flatTime     struct{ T time.Time }
	flatAlias    struct {
		N int `msgpack:"n,alias:m"`
	}
	flatDup struct {
		A int `msgpack:"x"`
		B int `msgpack:"x"`
	}
	flatArray struct {
		_msgpack struct{} `msgpack:",as_array"` //nolint:unused // read by msgpack through reflection
		N        int
	}
	myInt int
)

func (*flatCustom) DecodeMsgpack(*msgpack.Decoder) error { return nil }

// TestFlatStructTypes checks which types get a flat decoder: only those
// msgpack decodes by its default rules, field by field.
func TestFlatStructTypes(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want bool
	}{
		{reflect.TypeFor[flatAll](), true},
		{reflect.TypeFor[struct{}](), true},
		{reflect.TypeFor[int](), false},
		{reflect.TypeFor[*flatAll](), false},
		{reflect.TypeFor[flatCustom](), false},   // decodes itself (pointer receiver)
		{reflect.TypeFor[flatEmbedded](), false}, // embedded field
		{reflect.TypeFor[flatNamed](), false},    // a named field type may be registered with msgpack
		{reflect.TypeFor[flatTime](), false},
		{reflect.TypeFor[flatAlias](), false},
		{reflect.TypeFor[flatDup](), false},
		{reflect.TypeFor[flatArray](), false},
	} {
		if got := newFlatStruct(c.typ) != nil; got != c.want {
			t.Errorf("newFlatStruct(%v) != nil is %v, want %v", c.typ, got, c.want)
		}
	}
}

// checkFlat decodes data with flat and, when flat takes it, with msgpack
// too, and fails unless both give the same value without error. It
// reports whether flat took it.
func checkFlat(t *testing.T, flat *flatStruct, data []byte) bool {
	t.Helper()
	var got flatAll
	if !flat.decode(data, unsafe.Pointer(&got)) {
		return false
	}
	var want flatAll
	if err := (Msgpack{}).Unmarshal(data, &want); err != nil {
		t.Fatalf("flat decoded %x as %+v; msgpack: %v", data, got, err)
	}
	// Compared as msgpack encodes them: floats by their bits (NaN).
	g, err1 := msgpack.Marshal(got)
	w, err2 := msgpack.Marshal(want)
	if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
		t.Fatalf("flat decoded %x as %+v, msgpack as %+v", data, got, want)
	}
	return true
}

// TestFlatStructMatchesMsgpack encodes maps of random values under every
// code msgpack decodes into each field's kind (ints into floats, signed
// codes into unsigned fields, binary into strings, values out of a
// small field's range), with duplicate and unknown keys and truncations:
// whatever flat decodes, msgpack must decode alike, and flat must take
// every map of known keys and codes.
func TestFlatStructMatchesMsgpack(t *testing.T) {
	flat := newFlatStruct(reflect.TypeFor[flatAll]())
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	taken := 0
	for range 20000 {
		buf.Reset()
		n := rng.IntN(len(flatAllKeys) + 3)
		switch rng.IntN(3) {
		case 0:
			_ = enc.EncodeMapLen(n)
		case 1:
			buf.WriteByte(0xde)
			buf.Write([]byte{0, byte(n)})
		default:
			buf.WriteByte(0xdf)
			buf.Write([]byte{0, 0, 0, byte(n)})
		}
		unknown := false
		for range n {
			key := flatAllKeys[rng.IntN(len(flatAllKeys))]
			if rng.IntN(20) == 0 {
				key, unknown = "Skip", true
			}
			writeKey(&buf, enc, rng, key)
			writeValue(&buf, enc, rng)
		}
		data := buf.Bytes()
		if checkFlat(t, flat, data) {
			taken++
		} else if !unknown && validForFlat(data) {
			t.Fatalf("flat refused %x, which holds only known keys and codes", data)
		}
		if len(data) > 1 {
			checkFlat(t, flat, data[:rng.IntN(len(data))]) // truncated
		}
	}
	if taken < 1000 {
		t.Errorf("flat took %d of 20000 maps; the test needs it to take many", taken)
	}
}

// validForFlat decodes data with msgpack into flatAll and into a
// map[string]any, and reports whether every value has a code flat takes
// for its field: it decodes without error into flatAll and holds no nil
// and no float64 code for a float32 field.
func validForFlat(data []byte) bool {
	var v flatAll
	if (Msgpack{}).Unmarshal(data, &v) != nil {
		return false
	}
	d := msgpack.NewDecoder(bytes.NewReader(data))
	n, err := d.DecodeMapLen()
	if err != nil {
		return false
	}
	for range n {
		key, err := d.DecodeString()
		if err != nil {
			return false
		}
		c, err := d.PeekCode()
		if err != nil || c == 0xc0 || (key == "F32" && c == 0xcb) {
			return false
		}
		if err := d.Skip(); err != nil {
			return false
		}
	}
	return true
}

func writeKey(buf *bytes.Buffer, enc *msgpack.Encoder, rng *rand.Rand, key string) {
	switch rng.IntN(4) {
	case 0:
		_ = enc.EncodeString(key) // fixstr
	case 1:
		buf.WriteByte(0xd9)
		buf.WriteByte(byte(len(key)))
		buf.WriteString(key)
	case 2:
		buf.Write([]byte{0xda, 0, byte(len(key))})
		buf.WriteString(key)
	default:
		_ = enc.EncodeBytes([]byte(key)) // bin8
	}
}

// writeValue writes a random value under a random code of those msgpack
// decodes as a number, a bool or a string, sometimes nil.
func writeValue(buf *bytes.Buffer, enc *msgpack.Encoder, rng *rand.Rand) {
	u := rng.Uint64() >> rng.IntN(64)
	var err error
	switch rng.IntN(17) {
	case 0:
		buf.WriteByte(byte(u & 0x7f)) // positive fixint
	case 1:
		buf.WriteByte(0xe0 | byte(u&0x1f)) // negative fixint
	case 2:
		err = enc.EncodeUint8(uint8(u))
	case 3:
		err = enc.EncodeUint16(uint16(u))
	case 4:
		err = enc.EncodeUint32(uint32(u))
	case 5:
		err = enc.EncodeUint64(u)
	case 6:
		err = enc.EncodeInt8(int8(u))
	case 7:
		err = enc.EncodeInt16(int16(u))
	case 8:
		err = enc.EncodeInt32(int32(u))
	case 9:
		err = enc.EncodeInt64(int64(u))
	case 10:
		err = enc.EncodeFloat32(math.Float32frombits(uint32(u)))
	case 11:
		err = enc.EncodeFloat64(math.Float64frombits(u))
	case 12:
		err = enc.EncodeBool(u&1 == 1)
	case 13:
		err = enc.EncodeString(string(make([]byte, u%40)))
	case 14:
		err = enc.EncodeBytes(bytes.Repeat([]byte("x"), int(u%300)))
	case 15:
		err = enc.EncodeNil()
	default:
		err = enc.EncodeString(string(bytes.Repeat([]byte("é"), int(u%70000))))
	}
	if err != nil {
		panic(err)
	}
}

// FuzzFlatStruct: whatever flat decodes, msgpack decodes alike.
func FuzzFlatStruct(f *testing.F) {
	for _, v := range []flatAll{{}, {B: true, I: -1, I8: -128, U64: math.MaxUint64, F32: 1.5, F64: math.Inf(-1), S: "s", Tagged: "t"}} {
		data, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	flat := newFlatStruct(reflect.TypeFor[flatAll]())
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFlat(t, flat, data)
	})
}
