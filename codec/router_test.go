package codec_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// accountRegistry is a second aggregate's registry, in the other encoding
// than newRegistry's so that the router is seen to use each registry's own.
func accountRegistry(t testing.TB) *codec.Registry[AccountEvent] {
	t.Helper()
	reg := codec.New[AccountEvent](codec.WithEncoding(codec.JSON{}))
	type CreditedV1 struct{ Cents int64 }
	if err := errors.Join(
		codec.Register[Opened](reg, "account.opened"),
		codec.Register[Deposited](reg, "account.deposited"),
		codec.Upcast(reg, "account.credited", func(old CreditedV1) (AccountEvent, error) {
			if old.Cents < 0 {
				return nil, errors.New("negative credit")
			}
			return Deposited{Amount: old.Cents}, nil
		}),
	); err != nil {
		t.Fatal(err)
	}
	return reg
}

// record encodes e with reg into a stored event of stream s at version v.
func record[E, T any](t testing.TB, reg *codec.Registry[E], e T, s string, v uint64) eventstore.Recorded {
	t.Helper()
	te, ok := any(e).(E)
	if !ok {
		t.Fatalf("%T is not a %T event", e, reg)
	}
	ev, err := reg.Event(te)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Recorded{Event: ev, StreamID: s, Version: v, Position: v}
}

func newRouter(t testing.TB, regs ...codec.Routable) *codec.Router {
	t.Helper()
	rt, err := codec.NewRouter(regs...)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestRouterDecode(t *testing.T) {
	events := newRegistry(t, codec.Msgpack{})
	accounts := accountRegistry(t)
	rt := newRouter(t, events, accounts)

	// What the old program stored under the name now upcast.
	old := codec.New[AccountEvent](codec.WithEncoding(codec.JSON{}))
	if err := codec.Register[CreditedV1Event](old, "account.credited"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		rec  eventstore.Recorded
		want any
	}{
		{record(t, events, Created{Name: "a", Tags: []string{"x"}}, "thing-1", 1), Created{Name: "a", Tags: []string{"x"}}},
		{record(t, events, Counted{N: -3}, "thing-1", 2), Counted{N: -3}},
		{record(t, events, &Pointed{X: 2.5}, "thing-2", 1), &Pointed{X: 2.5}},
		{record(t, accounts, Opened{Owner: "ada"}, "account-1", 1), Opened{Owner: "ada"}},
		{record(t, accounts, Deposited{Amount: 7}, "account-1", 2), Deposited{Amount: 7}},
		{record(t, old, CreditedV1Event{Cents: 250}, "account-1", 3), Deposited{Amount: 250}}, // upcast
	}
	for _, tc := range tests {
		got, err := rt.Decode(tc.rec)
		if err != nil {
			t.Errorf("Decode(%q): %v", tc.rec.Type, err)
			continue
		}
		// cmp.Diff on two `any` also compares the dynamic types: a Deposited
		// is not a *Deposited.
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Decode(%q) (-want +got):\n%s", tc.rec.Type, diff)
		}
	}
}

func TestRouterDecodeErrors(t *testing.T) {
	rt := newRouter(t, newRegistry(t, codec.Msgpack{}), accountRegistry(t))
	tests := []struct {
		name string
		typ  string
		data []byte
		want error
	}{
		{"unknown type", "account.closed", []byte(`{}`), codec.ErrUnknownType},
		{"malformed", "test.counted", []byte{0xc1}, codec.ErrMalformed},
		{"malformed old name", "account.credited", []byte(`{"Cents":"x"}`), codec.ErrMalformed},
		{"failed upcast", "account.credited", []byte(`{"Cents":-1}`), codec.ErrUpcast},
	}
	for _, tc := range tests {
		rec := eventstore.Recorded{Event: eventstore.Event{Type: tc.typ, Data: tc.data}, StreamID: "acc-7", Version: 12}
		ev, err := rt.Decode(rec)
		if !errors.Is(err, tc.want) || ev != nil {
			t.Errorf("%s: Decode = %#v, %v; want nil, %v", tc.name, ev, err, tc.want)
			continue
		}
		wantDecodeError(t, tc.name, err, codec.DecodeError{StreamID: "acc-7", Version: 12, Type: tc.typ, Kind: tc.want})
	}

	var zero codec.Router
	if _, err := zero.Decode(eventstore.Recorded{Event: eventstore.Event{Type: "test.counted"}}); !errors.Is(err, codec.ErrUnknownType) {
		t.Errorf("zero Router Decode: %v, want ErrUnknownType", err)
	}
	empty := newRouter(t)
	if _, err := empty.Decode(eventstore.Recorded{Event: eventstore.Event{Type: "test.counted"}}); !errors.Is(err, codec.ErrUnknownType) {
		t.Errorf("NewRouter() Decode: %v, want ErrUnknownType", err)
	}
}

// renamedAccount is an AccountEvent that a careless author registered under
// a name of the Event aggregate.
type renamedAccount struct{ From, To string }

func (renamedAccount) isAccountEvent() {}

func TestNewRouterErrors(t *testing.T) {
	events := newRegistry(t, codec.Msgpack{})
	clash := accountRegistry(t)
	if err := errors.Join(
		codec.Register[renamedAccount](clash, "test.renamed"),
		codec.Upcast(clash, "test.created", func(o Opened) (AccountEvent, error) { return o, nil }),
	); err != nil {
		t.Fatal(err)
	}
	var nilRegistry *codec.Registry[Event]

	tests := []struct {
		name  string
		regs  []codec.Routable
		want  error // nil: any error
		parts []string
	}{
		{"name in two registries", []codec.Routable{events, clash}, codec.ErrDuplicate, []string{
			// Both clashes, in name order, each naming both registries.
			`type "test.created" is registered in both registry #1 (codec_test.Event) and registry #2 (codec_test.AccountEvent)`,
			`type "test.renamed" is registered in both registry #1 (codec_test.Event) and registry #2 (codec_test.AccountEvent)`,
		}},
		{"same registry twice", []codec.Routable{events, accountRegistry(t), events}, codec.ErrDuplicate, []string{"registry #3 (codec_test.Event) is #1 again"}},
		{"nil", []codec.Routable{events, nil}, nil, []string{"registry #2 is nil"}},
		{"typed nil", []codec.Routable{nilRegistry}, nil, []string{"registry #1 is nil"}},
	}
	for _, tc := range tests {
		rt, err := codec.NewRouter(tc.regs...)
		if err == nil || rt != nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: NewRouter = %v, %v; want nil, an error wrapping %v", tc.name, rt, err, tc.want)
			continue
		}
		msg := err.Error()
		last := -1
		for _, part := range tc.parts {
			i := strings.Index(msg, part)
			if i < 0 || i < last {
				t.Errorf("%s: message %q lacks %q (or has it out of order)", tc.name, msg, part)
			}
			last = i
		}
	}
}

// A registration made after NewRouter is seen by the next Decode, and a name
// it makes ambiguous is refused from then on, even one decoded before.
func TestRouterSeesLaterRegistrations(t *testing.T) {
	events := newRegistry(t, codec.Msgpack{})
	var accounts codec.Registry[AccountEvent] // a zero registry: no names yet
	rt := newRouter(t, events, &accounts)

	writer := codec.New[AccountEvent]() // msgpack, as the zero registry
	if err := codec.Register[Opened](writer, "account.opened"); err != nil {
		t.Fatal(err)
	}
	opened := record(t, writer, Opened{Owner: "ada"}, "account-1", 1)
	if _, err := rt.Decode(opened); !errors.Is(err, codec.ErrUnknownType) {
		t.Fatalf("before registration: %v, want ErrUnknownType", err)
	}
	if err := codec.Register[Opened](&accounts, "account.opened"); err != nil {
		t.Fatal(err)
	}
	if got, err := rt.Decode(opened); err != nil || got != any(Opened{Owner: "ada"}) {
		t.Fatalf("after registration: %#v, %v; want Opened{ada}", got, err)
	}

	// An upcast added to the other registry is seen too.
	counted := record(t, events, Counted{N: 4}, "thing-1", 1)
	counted.Type = "test.counted.v0"
	if err := codec.Upcast(events, "test.counted.v0", func(c Counted) (Event, error) { return Counted{N: c.N * 2}, nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := rt.Decode(counted); err != nil || got != any(Counted{N: 8}) {
		t.Fatalf("after upcast: %#v, %v; want Counted{8}", got, err)
	}

	// Now the account registry claims a name the router already routes to
	// the other one: events of that name are refused, the rest still decode.
	renamed := record(t, events, Renamed{From: "a", To: "b"}, "thing-1", 2)
	if _, err := rt.Decode(renamed); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[renamedAccount](&accounts, "test.renamed"); err != nil {
		t.Fatal(err)
	}
	got, err := rt.Decode(renamed)
	if !errors.Is(err, codec.ErrDuplicate) || got != nil {
		t.Errorf("name claimed twice: %#v, %v; want nil, ErrDuplicate", got, err)
	}
	for _, part := range []string{`stream "thing-1" version 2`, `"test.renamed"`, "codec_test.Event", "codec_test.AccountEvent"} {
		if err != nil && !strings.Contains(err.Error(), part) {
			t.Errorf("message %q does not name %s", err, part)
		}
	}
	if _, err := rt.Decode(opened); err != nil {
		t.Errorf("an unambiguous name after the clash: %v", err)
	}
}

// Decoders never lock out registrations or each other, and a registration
// that returned before a Decode began is always seen by it.
func TestRouterConcurrent(t *testing.T) {
	events := newRegistry(t, codec.Msgpack{})
	accounts := accountRegistry(t)
	rt := newRouter(t, events, accounts)
	fixed := []eventstore.Recorded{
		record(t, events, Counted{N: 1}, "thing-1", 1),
		record(t, accounts, Deposited{Amount: 2}, "account-1", 1),
	}
	const lateNames = 100
	late := make([]eventstore.Recorded, lateNames) // events stored under names registered below
	for i := range late {
		late[i] = record(t, accounts, Deposited{Amount: int64(i)}, "account-2", uint64(i)+1)
		late[i].Type = fmt.Sprintf("account.deposited.v%d", i)
	}
	var registered atomic.Int64 // the names of late[:registered] are registered

	var g errgroup.Group
	g.Go(func() error {
		for i := range lateNames {
			if err := codec.Upcast(accounts, late[i].Type, func(d Deposited) (AccountEvent, error) { return d, nil }); err != nil {
				return err
			}
			registered.Store(int64(i) + 1)
		}
		return nil
	})
	for range 4 {
		g.Go(func() error {
			// At least one pass, and a last one after all registrations.
			for done := false; !done; {
				n := int(registered.Load())
				done = n == lateNames
				for _, rec := range fixed {
					if _, err := rt.Decode(rec); err != nil {
						return err
					}
				}
				for i := range min(n+1, lateNames) {
					got, err := rt.Decode(late[i])
					switch {
					case i < n && err != nil:
						return fmt.Errorf("%s registered before Decode began: %w", late[i].Type, err)
					case err != nil && !errors.Is(err, codec.ErrUnknownType):
						return err
					case err == nil && got != any(Deposited{Amount: int64(i)}):
						return fmt.Errorf("%s decoded as %#v", late[i].Type, got)
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Decode(late[lateNames-1]); err != nil {
		t.Errorf("last late name: %v", err)
	}
}
