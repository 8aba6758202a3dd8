package codec_test

import (
	"errors"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/esv2/esv2/codec"
)

type hidden struct{ n int }

type nestedHidden struct {
	Name  string
	Inner struct{ count int }
}

type sliceHidden struct{ Lines []hidden }

type mapHidden struct{ ByID map[string]*hidden }

type keyHidden struct{ ByKey map[hidden]int }

type msgpackSkipped struct {
	A int
	B int `msgpack:"-"`
}

type jsonSkipped struct {
	A int
	B int `json:"-"`
}

type withInterface struct{ Last any }

type withFunc struct{ F func() }

// counter has unexported fields but marshals itself, for both encodings.
type counter struct{ n int }

func (c counter) MarshalMsgpack() ([]byte, error)  { return msgpack.Marshal(c.n) }
func (c *counter) UnmarshalMsgpack(b []byte) error { return msgpack.Unmarshal(b, &c.n) }
func (c counter) MarshalText() ([]byte, error)     { return []byte(strconv.Itoa(c.n)), nil }
func (c *counter) UnmarshalText(b []byte) (err error) {
	c.n, err = strconv.Atoi(string(b))
	return err
}

type embedded struct{ Exported int }

type good struct {
	Name    string
	N       int64
	Log     []int64
	Opened  time.Time
	Closed  *time.Time
	Balance *big.Int
	Tags    map[string][]string
	Count   counter
	Tree    *node
	embedded
}

type node struct {
	Value int
	Kids  []node
}

func TestCheckState(t *testing.T) {
	msgpackEnc, jsonEnc := codec.Msgpack{}, codec.JSON{}
	tests := []struct {
		name  string
		check func() error
		field string // "" means no error
	}{
		{"unexported/msgpack", func() error { return codec.CheckState[hidden](msgpackEnc) }, "n"},
		{"unexported/json", func() error { return codec.CheckState[hidden](jsonEnc) }, "n"},
		{"unexported/pointer", func() error { return codec.CheckState[*hidden](msgpackEnc) }, "n"},
		{"nested", func() error { return codec.CheckState[nestedHidden](msgpackEnc) }, "Inner.count"},
		{"slice", func() error { return codec.CheckState[sliceHidden](msgpackEnc) }, "Lines[].n"},
		{"map value", func() error { return codec.CheckState[mapHidden](jsonEnc) }, "ByID[value].n"},
		{"map key", func() error { return codec.CheckState[keyHidden](msgpackEnc) }, "ByKey[key].n"},
		{"array", func() error { return codec.CheckState[[2]hidden](msgpackEnc) }, "[].n"},
		{"msgpack skip tag", func() error { return codec.CheckState[msgpackSkipped](msgpackEnc) }, "B"},
		{"json skip tag", func() error { return codec.CheckState[jsonSkipped](jsonEnc) }, "B"},
		{"interface", func() error { return codec.CheckState[withInterface](msgpackEnc) }, "Last"},
		{"func", func() error { return codec.CheckState[withFunc](jsonEnc) }, "F"},
		{"good/msgpack", func() error {
			return codec.CheckState(msgpackEnc, good{Name: "x", N: 3, Log: []int64{1}, Opened: time.Now(), Balance: big.NewInt(7),
				Tags: map[string][]string{"a": {"b"}}, Count: counter{n: 4}, Tree: &node{Kids: []node{{Value: 1}}}, embedded: embedded{5}})
		}, ""},
		{"good/json", func() error {
			return codec.CheckState(jsonEnc, good{Name: "x", Opened: time.Now(), Balance: big.NewInt(7), Count: counter{n: 4}})
		}, ""},
		{"json ignores msgpack tag", func() error { return codec.CheckState[msgpackSkipped](jsonEnc) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("CheckState: %v, want nil", err)
				}
				return
			}
			var se *codec.StateError
			if !errors.As(err, &se) || !errors.Is(err, codec.ErrState) {
				t.Fatalf("CheckState: %v, want a *StateError wrapping ErrState", err)
			}
			if se.Field != tc.field {
				t.Errorf("CheckState: field %q, want %q (error %v)", se.Field, tc.field, err)
			}
		})
	}
}

// gobLike is an encoding the static check knows nothing about: only the
// round trip of the samples can judge it.
type gobLike struct{ codec.JSON }

func (gobLike) Name() string { return "custom" }

func TestCheckStateRoundTrip(t *testing.T) {
	// A custom encoding: the zero state survives (n is 0 either way), the
	// sample does not.
	if err := codec.CheckState[hidden](gobLike{}); err != nil {
		t.Errorf("zero state only: %v, want nil (nothing to tell it apart)", err)
	}
	err := codec.CheckState(gobLike{}, hidden{n: 5})
	var se *codec.StateError
	if !errors.As(err, &se) || se.Field != "n" {
		t.Errorf("sample with n=5 through a custom encoding: %v, want a *StateError on field n", err)
	}
	// JSON cannot encode a complex number.
	if err := codec.CheckState[struct{ C complex128 }](codec.JSON{}); !errors.Is(err, codec.ErrState) {
		t.Errorf("complex field with JSON: %v, want ErrState", err)
	}
}
