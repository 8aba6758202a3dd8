package codec_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

type Event interface{ isEvent() }

type Created struct {
	Name string
	Tags []string
}
type Counted struct{ N int64 }
type Renamed struct{ From, To string }

// Pointed has a pointer-receiver method, so *Pointed is the event type.
type Pointed struct{ X float64 }

func (Created) isEvent()  {}
func (Counted) isEvent()  {}
func (Renamed) isEvent()  {}
func (*Pointed) isEvent() {}

// NotEvent does not implement Event.
type NotEvent struct{}

var encodings = []codec.Encoding{codec.Msgpack{}, codec.JSON{}}

func newRegistry(t testing.TB, enc codec.Encoding) *codec.Registry[Event] {
	t.Helper()
	reg := codec.New[Event](codec.WithEncoding(enc))
	if err := errors.Join(
		codec.Register[Created](reg, "test.created"),
		codec.Register[Counted](reg, "test.counted"),
		codec.Register[Renamed](reg, "test.renamed"),
		codec.Register[*Pointed](reg, "test.pointed"),
	); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestRoundTrip(t *testing.T) {
	events := []struct {
		name string
		e    Event
	}{
		{"test.created", Created{Name: "a", Tags: []string{"x", "y"}}},
		{"test.counted", Counted{N: -42}},
		{"test.renamed", Renamed{From: "a", To: "b"}},
		{"test.pointed", &Pointed{X: 1.5}},
	}
	for _, enc := range encodings {
		t.Run(enc.Name(), func(t *testing.T) {
			reg := newRegistry(t, enc)
			for _, tc := range events {
				typ, data, err := reg.Encode(tc.e)
				if err != nil {
					t.Fatalf("Encode(%#v): %v", tc.e, err)
				}
				if typ != tc.name {
					t.Errorf("Encode(%#v) type = %q, want %q", tc.e, typ, tc.name)
				}
				got, err := reg.Decode(typ, data)
				if err != nil {
					t.Fatalf("Decode(%q): %v", typ, err)
				}
				if diff := cmp.Diff(tc.e, got); diff != "" {
					t.Errorf("round trip of %q (-want +got):\n%s", typ, diff)
				}
			}
		})
	}
}

func TestEventHelper(t *testing.T) {
	reg := newRegistry(t, codec.Msgpack{})
	ev, err := reg.Event(Counted{N: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.DecodeRecorded(&eventstore.Recorded{Event: ev, StreamID: "s", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Event(Counted{N: 3}), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRegisterErrors(t *testing.T) {
	reg := newRegistry(t, codec.Msgpack{})
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"name again", codec.Register[Counted](reg, "test.created"), codec.ErrDuplicate},
		{"type again", codec.Register[Counted](reg, "test.counted.v2"), codec.ErrDuplicate},
		{"upcast over registered name", codec.Upcast(reg, "test.counted", func(c Counted) (Event, error) { return c, nil }), codec.ErrDuplicate},
		{"not an event", codec.Register[NotEvent](reg, "test.not"), codec.ErrNotRegistered},
		{"value of pointer-receiver type", codec.Register[Pointed](reg, "test.pointed.value"), codec.ErrNotRegistered},
		{"interface type", codec.Register[Event](reg, "test.iface"), codec.ErrNotRegistered},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	for _, name := range []string{"", "a\x00b", strings.Repeat("x", eventstore.MaxIDLength+1), "\xff"} {
		if err := codec.Register[Counted](codec.New[Event](), name); err == nil {
			t.Errorf("Register(%q) accepted an invalid name", name)
		}
	}
	// The failed registrations changed nothing.
	typ, _, err := reg.Encode(Counted{N: 1})
	if err != nil || typ != "test.counted" {
		t.Errorf("after failed registrations Encode = %q, %v; want test.counted", typ, err)
	}
	if _, err := reg.Decode("test.counted.v2", nil); !errors.Is(err, codec.ErrUnknownType) {
		t.Errorf("a refused name was registered: %v", err)
	}
}

func TestEncodeUnregistered(t *testing.T) {
	reg := codec.New[Event]()
	if err := codec.Register[Created](reg, "test.created"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Event{Counted{}, nil, (*Pointed)(nil)} {
		if _, _, err := reg.Encode(e); !errors.Is(err, codec.ErrNotRegistered) {
			t.Errorf("Encode(%#v) err = %v, want ErrNotRegistered", e, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, enc := range encodings {
		t.Run(enc.Name(), func(t *testing.T) {
			reg := newRegistry(t, enc)
			tests := []struct {
				name string
				typ  string
				data []byte
				want error
			}{
				{"unknown type", "test.deleted", []byte{0x80}, codec.ErrUnknownType},
				{"garbage", "test.created", []byte{0xc1, 0xff, 0x00}, codec.ErrMalformed},
				{"truncated", "test.created", []byte{0x82, 0xa4, 'N'}, codec.ErrMalformed},
				{"wrong shape", "test.counted", []byte(`"text"`), codec.ErrMalformed},
				{"empty", "test.renamed", nil, codec.ErrMalformed},
			}
			for _, tc := range tests {
				rec := &eventstore.Recorded{Event: eventstore.Event{Type: tc.typ, Data: tc.data}, StreamID: "acc-7", Version: 12}
				_, err := reg.DecodeRecorded(rec)
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
					continue
				}
				wantDecodeError(t, tc.name, err, codec.DecodeError{StreamID: "acc-7", Version: 12, Type: tc.typ, Kind: tc.want})
				for _, part := range []string{`"acc-7"`, "version 12", `"` + tc.typ + `"`} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("%s: message %q does not name %s", tc.name, err, part)
					}
				}
			}
		})
	}
}

func TestUpcast(t *testing.T) {
	type CountedV1 struct{ Count int32 }
	reg := newRegistry(t, codec.Msgpack{})
	boom := errors.New("negative count")
	err := codec.Upcast(reg, "test.counted.v1", func(old CountedV1) (Event, error) {
		if old.Count < 0 {
			return nil, boom
		}
		return Counted{N: int64(old.Count) * 10}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := codec.EncodeState(codec.Msgpack{}, CountedV1{Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.Decode("test.counted.v1", data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Event(Counted{N: 40}), got); diff != "" {
		t.Errorf("upcast (-want +got):\n%s", diff)
	}
	// Writing always uses the current name.
	if typ, _, _ := reg.Encode(got); typ != "test.counted" {
		t.Errorf("upcast event encodes as %q, want test.counted", typ)
	}

	bad, _ := codec.EncodeState(codec.Msgpack{}, CountedV1{Count: -1})
	_, err = reg.Decode("test.counted.v1", bad)
	if !errors.Is(err, codec.ErrUpcast) || !errors.Is(err, boom) {
		t.Errorf("failing upcaster: err = %v, want ErrUpcast wrapping %v", err, boom)
	}
	_, err = reg.Decode("test.counted.v1", []byte{0xc1})
	if !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("malformed old bytes: err = %v, want ErrMalformed", err)
	}
	if err := codec.Upcast[CountedV1](reg, "test.nil", nil); err == nil {
		t.Error("Upcast accepted a nil function")
	}
}

// panicky is an encoding that panics, as a buggy plugged-in one might.
type panicky struct{}

func (panicky) Name() string                { return "panicky" }
func (panicky) Marshal(any) ([]byte, error) { panic("marshal boom") }
func (panicky) Unmarshal([]byte, any) error { panic("unmarshal boom") }

func TestPanickingEncodingIsAnError(t *testing.T) {
	reg := newRegistry(t, panicky{})
	if _, _, err := reg.Encode(Counted{}); err == nil || !strings.Contains(err.Error(), "marshal boom") {
		t.Errorf("Encode err = %v, want the panic reported", err)
	}
	if _, err := reg.Decode("test.counted", []byte{1}); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("Decode err = %v, want ErrMalformed", err)
	}
	if _, err := codec.DecodeState[Counted](panicky{}, nil); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("DecodeState err = %v, want ErrMalformed", err)
	}
	if _, err := codec.EncodeState(panicky{}, Counted{}); err == nil {
		t.Error("EncodeState hid a panic")
	}
}

func TestStateRoundTrip(t *testing.T) {
	type state struct {
		Balance int64
		Owners  map[string]bool
		History []string
	}
	want := state{Balance: 9, Owners: map[string]bool{"a": true}, History: []string{"x"}}
	for _, enc := range encodings {
		data, err := codec.EncodeState(enc, want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.DecodeState[state](enc, data)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", enc.Name(), diff)
		}
		if _, err := codec.DecodeState[state](enc, []byte{0xc1, '{'}); !errors.Is(err, codec.ErrMalformed) {
			t.Errorf("%s: malformed state err = %v", enc.Name(), err)
		}
	}
}

// TestConcurrentRegisterAndDecode runs under -race: registering while
// others decode must be safe.
func TestConcurrentRegisterAndDecode(t *testing.T) {
	reg := newRegistry(t, codec.Msgpack{})
	_, data, err := reg.Encode(Counted{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := fmt.Sprintf("test.alias.%d.%d", g, i)
				if err := codec.Upcast(reg, name, func(c Counted) (Event, error) { return c, nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := reg.Decode("test.counted", data); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := reg.Decode("test.alias.3.49", data); err != nil {
		t.Errorf("last alias not registered: %v", err)
	}
}

func TestZeroRegistryAndNilOption(t *testing.T) {
	var reg codec.Registry[Event]
	if _, err := reg.Decode("test.counted", nil); !errors.Is(err, codec.ErrUnknownType) {
		t.Errorf("zero registry Decode: %v, want ErrUnknownType", err)
	}
	if err := codec.Register[Counted](&reg, "test.counted"); err != nil {
		t.Fatal(err)
	}
	typ, data, err := reg.Encode(Counted{N: 2})
	if err != nil || typ != "test.counted" {
		t.Fatalf("zero registry Encode = %q, %v", typ, err)
	}
	if got, err := reg.Decode(typ, data); err != nil || got != Event(Counted{N: 2}) {
		t.Errorf("zero registry round trip = %#v, %v", got, err)
	}
	if got := codec.New[Event](nil).Encoding().Name(); got != "msgpack" {
		t.Errorf("New(nil option) encoding %q, want msgpack", got)
	}
}

// wantDecodeError checks that err is a *DecodeError equal to want, its
// Cause aside.
func wantDecodeError(t *testing.T, name string, err error, want codec.DecodeError) {
	t.Helper()
	var de *codec.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%s: err %T is not a *DecodeError", name, err)
	}
	got := *de
	got.Cause = nil
	if diff := cmp.Diff(want, got, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("%s: DecodeError (-want +got):\n%s", name, diff)
	}
}
