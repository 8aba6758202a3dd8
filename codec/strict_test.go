package codec_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/esv2/esv2/codec"
)

// Two versions of one event type, stored under one name: version 2 renamed
// Amount to Sum without an upcaster.
type depositedV1 struct{ Amount int64 }
type depositedV2 struct{ Sum int64 }

func (depositedV1) isAccountEvent() {}
func (depositedV2) isAccountEvent() {}

// TestRenamedFieldStrict: a renamed field decodes as its zero value by
// default, with both encodings, and is an error with DisallowUnknownFields
// (issue 9 item 8), for events and snapshot states alike; an upcaster from
// the old shape still decodes strictly.
func TestRenamedFieldStrict(t *testing.T) {
	for _, c := range []struct {
		lenient, strict codec.Encoding
	}{
		{codec.Msgpack{}, codec.Msgpack{DisallowUnknownFields: true}},
		{codec.JSON{}, codec.JSON{DisallowUnknownFields: true}},
	} {
		t.Run(c.lenient.Name(), func(t *testing.T) {
			old := codec.New[AccountEvent](codec.WithEncoding(c.lenient))
			if err := codec.Register[depositedV1](old, "account.deposited"); err != nil {
				t.Fatal(err)
			}
			typ, data, err := old.Encode(depositedV1{Amount: 50})
			if err != nil {
				t.Fatal(err)
			}

			lenient := codec.New[AccountEvent](codec.WithEncoding(c.lenient))
			strict := codec.New[AccountEvent](codec.WithEncoding(c.strict))
			for _, reg := range []*codec.Registry[AccountEvent]{lenient, strict} {
				if err := codec.Register[depositedV2](reg, "account.deposited"); err != nil {
					t.Fatal(err)
				}
			}
			e, err := lenient.Decode(typ, data)
			if err != nil || e != (depositedV2{}) {
				t.Errorf("default decoding of a renamed field: %#v, %v; want the zero value, no error (the trap strict mode closes)", e, err)
			}
			e, err = strict.Decode(typ, data)
			var de *codec.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("strict decoding of a renamed field: %#v, %v; want a *DecodeError wrapping ErrMalformed", e, err)
			}

			// Snapshot states go through the same encodings.
			state, err := codec.EncodeState(c.lenient, depositedV1{Amount: 50})
			if err != nil {
				t.Fatal(err)
			}
			if s, err := codec.DecodeState[depositedV2](c.lenient, state); err != nil || s != (depositedV2{}) {
				t.Errorf("default DecodeState of a renamed field: %+v, %v; want the zero value", s, err)
			}
			if s, err := codec.DecodeState[depositedV2](c.strict, state); !errors.Is(err, codec.ErrMalformed) {
				t.Errorf("strict DecodeState of a renamed field: %+v, %v; want ErrMalformed", s, err)
			}

			// The clean rename: a new name, and an upcaster from the old
			// shape, which strict mode decodes into the old Go type.
			up := codec.New[AccountEvent](codec.WithEncoding(c.strict))
			if err := errors.Join(
				codec.Register[depositedV2](up, "account.deposited.v2"),
				codec.Upcast(up, "account.deposited", func(o depositedV1) (AccountEvent, error) { return depositedV2{Sum: o.Amount}, nil }),
			); err != nil {
				t.Fatal(err)
			}
			if e, err := up.Decode(typ, data); err != nil || e != (depositedV2{Sum: 50}) {
				t.Errorf("strict decoding through an upcaster: %#v, %v; want Sum 50", e, err)
			}

			// Strict mode still decodes what matches, and refuses
			// trailing bytes as the default does.
			_, cur, err := strict.Encode(depositedV2{Sum: 7})
			if err != nil {
				t.Fatal(err)
			}
			if e, err := strict.Decode("account.deposited", cur); err != nil || e != (depositedV2{Sum: 7}) {
				t.Errorf("strict decoding of the current shape: %#v, %v", e, err)
			}
			if c.lenient.Name() == "json" {
				for _, enc := range []codec.Encoding{c.lenient, c.strict} {
					var v depositedV2
					if err := enc.Unmarshal([]byte(`{"Sum":1} x`), &v); err == nil {
						t.Errorf("%+v: trailing data accepted", enc)
					}
				}
			}
		})
	}
}

// A pooled msgpack decoder must not carry strictness from one call to the
// next.
func TestMsgpackStrictDoesNotLeak(t *testing.T) {
	data, err := codec.Msgpack{}.Marshal(depositedV1{Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		var v depositedV2
		if err := (codec.Msgpack{DisallowUnknownFields: true}).Unmarshal(data, &v); err == nil {
			t.Fatalf("round %d: strict decoding accepted an unknown field", i)
		}
		if err := (codec.Msgpack{}).Unmarshal(data, &v); err != nil {
			t.Fatalf("round %d: lenient decoding after a strict one: %v", i, err)
		}
	}
}

// A field renamed without an upcaster decodes silently as its zero value,
// unless decoding is strict.
func ExampleMsgpack_disallowUnknownFields() {
	type DepositedV1 struct{ Amount int64 }
	type DepositedV2 struct{ Sum int64 } // Amount renamed, no upcaster

	stored, _ := codec.Msgpack{}.Marshal(DepositedV1{Amount: 50})

	var lenient DepositedV2
	err := codec.Msgpack{}.Unmarshal(stored, &lenient)
	fmt.Printf("default: %+v, error: %v\n", lenient, err)

	var strict DepositedV2
	err = codec.Msgpack{DisallowUnknownFields: true}.Unmarshal(stored, &strict)
	fmt.Println("strict:", err)
	// Output:
	// default: {Sum:0}, error: <nil>
	// strict: msgpack: unknown field "Amount"
}

// A registry decoding strictly turns the forgotten upcaster into an error
// a test sees.
func ExampleJSON_disallowUnknownFields() {
	reg := codec.New[AccountEvent](codec.WithEncoding(codec.JSON{DisallowUnknownFields: true}))
	if err := codec.Register[Deposited](reg, "account.deposited"); err != nil {
		fmt.Println(err)
		return
	}
	// Stored when the field was called Cents.
	_, err := reg.Decode("account.deposited", []byte(`{"Cents":250}`))
	fmt.Println(errors.Is(err, codec.ErrMalformed))
	fmt.Println(err)
	// Output:
	// true
	// codec: decode type "account.deposited": malformed data: json: unknown field "Cents"
}
