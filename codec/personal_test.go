package codec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

type Profile struct {
	Street string
	Phone  []string
}

// Signed holds personal fields at several depths.
type Signed struct {
	Customer string
	Email    codec.Personal[string]
	Profile  codec.Personal[Profile]
	Cards    []codec.Personal[string]
	ByRole   map[string]codec.Personal[string]
	Ptr      *codec.Personal[int]
	Absent   codec.Personal[string]
}

func (Signed) isEvent() {}

type Mail struct{ Email codec.Personal[string] }

func (Mail) isEvent() {}

const marker = "MARKER-4ea1c9-plaintext"

func personalRegistry(t testing.TB, enc codec.Encoding, ks codec.KeyStore) *codec.Registry[Event] {
	t.Helper()
	reg := codec.New[Event](codec.WithEncoding(enc), codec.WithKeyStore(ks))
	if err := errors.Join(
		codec.Register[Signed](reg, "test.signed"),
		codec.Register[Counted](reg, "test.counted"),
	); err != nil {
		t.Fatal(err)
	}
	return reg
}

func signed(subject string) Signed {
	n := 7
	p := codec.NewPersonal(subject, n)
	return Signed{
		Customer: subject,
		Email:    codec.NewPersonal(subject, marker+"@example.com"),
		Profile:  codec.NewPersonal(subject, Profile{Street: marker + " street", Phone: []string{"+1 " + marker}}),
		Cards:    []codec.Personal[string]{codec.NewPersonal(subject, marker+"-card")},
		ByRole:   map[string]codec.Personal[string]{"admin": codec.NewPersonal(subject, marker+"-role")},
		Ptr:      &p,
	}
}

func TestPersonalRoundTripAndForget(t *testing.T) {
	for _, enc := range encodings {
		t.Run(enc.Name(), func(t *testing.T) {
			ctx := t.Context()
			ks := codec.NewMemoryKeyStore()
			reg := personalRegistry(t, enc, ks)
			in := signed("cust-1")
			other := Signed{Customer: "cust-2", Email: codec.NewPersonal("cust-2", "bob@example.com")}
			typ, data, err := reg.EncodeContext(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(marker)) || bytes.Contains(data, []byte("MARKER")) {
				t.Fatalf("the encoded event holds the plaintext: %q", data)
			}
			if !bytes.Contains(data, []byte("cust-1")) {
				t.Fatalf("the subject is not kept beside the ciphertext: %q", data)
			}
			_, otherData, err := reg.EncodeContext(ctx, other)
			if err != nil {
				t.Fatal(err)
			}

			got, err := reg.DecodeContext(ctx, typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Event(in), got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			s := got.(Signed)
			if s.Email.Redacted() || s.Email.Value() != marker+"@example.com" || s.Email.Subject() != "cust-1" {
				t.Fatalf("decoded Email = %v %q", s.Email, s.Email.Value())
			}
			if !s.Absent.IsZero() || s.Absent.Redacted() {
				t.Fatalf("a zero Personal decoded as %v", s.Absent)
			}

			if err := ks.Forget(ctx, "cust-1"); err != nil {
				t.Fatal(err)
			}
			got, err = reg.DecodeContext(ctx, typ, data)
			if err != nil {
				t.Fatalf("decoding after Forget: %v (want redacted values, no error)", err)
			}
			s = got.(Signed)
			for name, p := range map[string]interface {
				Redacted() bool
				Subject() string
			}{"Email": s.Email, "Profile": s.Profile, "Cards[0]": s.Cards[0], "ByRole[admin]": s.ByRole["admin"], "Ptr": *s.Ptr} {
				if !p.Redacted() || p.Subject() != "cust-1" {
					t.Errorf("%s after Forget: redacted %v subject %q", name, p.Redacted(), p.Subject())
				}
			}
			if s.Email.Value() != "" || s.Profile.Value().Street != "" || s.Ptr.Value() != 0 {
				t.Errorf("redacted values are not zero: %q %+v %d", s.Email.Value(), s.Profile.Value(), s.Ptr.Value())
			}
			if s.Customer != "cust-1" {
				t.Errorf("a field that is not personal changed: %q", s.Customer)
			}
			if str := fmt.Sprint(s.Email); !strings.Contains(str, "redacted") {
				t.Errorf("a redacted value prints as %q", str)
			}

			// Re-encoding a redacted value keeps its ciphertext: still redacted.
			_, again, err := reg.EncodeContext(ctx, s)
			if err != nil {
				t.Fatalf("re-encoding a redacted event: %v", err)
			}
			got, err = reg.DecodeContext(ctx, typ, again)
			if err != nil || !got.(Signed).Email.Redacted() {
				t.Fatalf("re-encoded redacted event: %v, %v", got, err)
			}

			// A new key for the same subject does not open the old values,
			// and they are redacted, not corrupt.
			fresh := Signed{Customer: "cust-1", Email: codec.NewPersonal("cust-1", "new@example.com")}
			_, freshData, err := reg.EncodeContext(ctx, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := reg.DecodeContext(ctx, typ, data); err != nil || !got.(Signed).Email.Redacted() {
				t.Fatalf("old value after the subject got a new key: %v, %v", got, err)
			}
			if got, err := reg.DecodeContext(ctx, typ, freshData); err != nil || got.(Signed).Email.Value() != "new@example.com" {
				t.Fatalf("new value: %v, %v", got, err)
			}
			// Another subject is untouched.
			if got, err := reg.DecodeContext(ctx, typ, otherData); err != nil || got.(Signed).Email.Value() != "bob@example.com" {
				t.Fatalf("other subject: %v, %v", got, err)
			}
		})
	}
}

func TestPersonalNonceIsRandom(t *testing.T) {
	reg := personalRegistry(t, codec.Msgpack{}, codec.NewMemoryKeyStore())
	_, a, err := reg.Encode(Signed{Email: codec.NewPersonal("s", "x")})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := reg.Encode(Signed{Email: codec.NewPersonal("s", "x")})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one value under one key gave the same bytes")
	}
}

func TestPersonalWithoutKeyStore(t *testing.T) {
	ks := codec.NewMemoryKeyStore()
	for _, enc := range encodings {
		t.Run(enc.Name(), func(t *testing.T) {
			plain := codec.New[Event](codec.WithEncoding(enc))
			if err := codec.Register[Signed](plain, "test.signed"); err != nil {
				t.Fatal(err)
			}
			_, _, err := plain.Encode(signed("cust-1"))
			if !errors.Is(err, codec.ErrNoKeyStore) {
				t.Fatalf("encoding personal data without a key store: got %v, want ErrNoKeyStore", err)
			}
			// The zero Personal needs no key store.
			if _, _, err := plain.Encode(Signed{Customer: "x"}); err != nil {
				t.Fatalf("encoding an event whose Personal fields are zero: %v", err)
			}
			typ, data, err := personalRegistry(t, enc, ks).Encode(signed("cust-1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plain.Decode(typ, data); !errors.Is(err, codec.ErrNoKeyStore) {
				t.Fatalf("decoding personal data without a key store: got %v, want ErrNoKeyStore", err)
			}
			if _, err := codec.DecodeState[Signed](enc, data); !errors.Is(err, codec.ErrNoKeyStore) {
				t.Fatalf("decoding a state with personal data without a key store: got %v, want ErrNoKeyStore", err)
			}
		})
	}
}

// failingKeyStore fails every call, as a key store whose database is down.
type failingKeyStore struct{ codec.KeyStore }

var errDown = errors.New("database down")

func (failingKeyStore) Key(context.Context, string) ([]byte, error) { return nil, errDown }

func TestPersonalKeyStoreFailureIsAnError(t *testing.T) {
	ks := codec.NewMemoryKeyStore()
	typ, data, err := personalRegistry(t, codec.Msgpack{}, ks).Encode(signed("cust-1"))
	if err != nil {
		t.Fatal(err)
	}
	reg := personalRegistry(t, codec.Msgpack{}, failingKeyStore{ks})
	_, err = reg.DecodeRecorded(&eventstore.Recorded{StreamID: "s-1", Version: 3, Event: eventstore.Event{Type: typ, Data: data}})
	var de *codec.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, codec.ErrKeyStore) || !errors.Is(err, errDown) || de.StreamID != "s-1" {
		t.Fatalf("got %v, want a DecodeError of s-1 wrapping ErrKeyStore and the store's error (never a redacted value)", err)
	}
	if _, err := codec.DecodeState[Signed](reg.Encoding(), data); !errors.Is(err, codec.ErrKeyStore) || !errors.Is(err, errDown) {
		t.Fatalf("state: got %v, want ErrKeyStore", err)
	}
}

// oneKey gives every subject the same key, so that the fingerprint
// cannot tell two subjects apart: only the authenticated subject can.
type oneKey struct{ key []byte }

func (o oneKey) Key(context.Context, string) ([]byte, error)    { return o.key, nil }
func (o oneKey) Create(context.Context, string) ([]byte, error) { return o.key, nil }
func (oneKey) Forget(context.Context, string) error             { return nil }

func TestPersonalTamperedIsMalformed(t *testing.T) {
	key, err := codec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	reg := personalRegistry(t, codec.JSON{}, oneKey{key})
	typ, data, err := reg.Encode(Signed{Email: codec.NewPersonal("cust-1", "x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Decode(typ, data); err != nil {
		t.Fatal(err)
	}
	// Move the value to another subject: the subject is authenticated.
	moved := bytes.Replace(data, []byte(`"subject":"cust-1"`), []byte(`"subject":"cust-2"`), 1)
	if _, err := reg.Decode(typ, moved); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("a value moved to another subject: got %v, want ErrMalformed", err)
	}
	if _, err := reg.Decode(typ, []byte(`{"Email":{"subject":"cust-1","sealed":"AAAA"}}`)); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("a short envelope: got %v, want ErrMalformed", err)
	}
	if _, err := reg.Decode(typ, []byte(`{"Email":{"subject":"","sealed":"AAAA"}}`)); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("an empty subject: got %v, want ErrMalformed", err)
	}
	// A flipped bit of the ciphertext or tag, which end the bytes of an
	// event with one personal field.
	mreg := codec.New[Event](codec.WithKeyStore(oneKey{key}))
	if err := codec.Register[Mail](mreg, "test.mail"); err != nil {
		t.Fatal(err)
	}
	typ, data, err = mreg.Encode(Mail{Email: codec.NewPersonal("cust-1", "x")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		if _, err := mreg.Decode(typ, bad); err == nil && i >= len(data)-20 {
			t.Fatalf("byte %d of %d flipped (in the tag or ciphertext): decoded without error", i, len(data))
		}
	}
}

func TestPersonalInvalidSubject(t *testing.T) {
	reg := personalRegistry(t, codec.Msgpack{}, codec.NewMemoryKeyStore())
	if _, _, err := reg.Encode(Signed{Email: codec.NewPersonal("", "x")}); !errors.Is(err, codec.ErrInvalidSubject) {
		t.Fatalf("got %v, want ErrInvalidSubject", err)
	}
}

// TestPersonalState: a snapshot state with personal fields is sealed by
// the registry's encoding and opens redacted after Forget; CheckState
// accepts it.
func TestPersonalState(t *testing.T) {
	type State struct {
		Name  codec.Personal[string]
		Count int
	}
	for _, enc := range encodings {
		t.Run(enc.Name(), func(t *testing.T) {
			ks := codec.NewMemoryKeyStore()
			reg := personalRegistry(t, enc, ks)
			if err := codec.CheckState(reg.Encoding(), State{}); err != nil {
				t.Fatalf("CheckState: %v", err)
			}
			var se *codec.StateError
			if err := codec.CheckState(enc, State{}); !errors.As(err, &se) || se.Field != "Name" {
				t.Fatalf("CheckState of a state with a Personal field, without a key store: %v, want a StateError naming Name", err)
			}
			st := State{Name: codec.NewPersonal("cust-9", marker), Count: 3}
			data, err := codec.EncodeStateContext(t.Context(), reg.Encoding(), st)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(marker)) {
				t.Fatal("the snapshot holds the plaintext")
			}
			back, err := codec.DecodeStateContext[State](t.Context(), reg.Encoding(), data)
			if err != nil || back.Name.Value() != marker || back.Count != 3 {
				t.Fatalf("got %v %v, %v", back.Name, back.Count, err)
			}
			if err := ks.Forget(t.Context(), "cust-9"); err != nil {
				t.Fatal(err)
			}
			back, err = codec.DecodeState[State](reg.Encoding(), data)
			if err != nil || !back.Name.Redacted() || back.Count != 3 {
				t.Fatalf("after Forget: %v %v, %v", back.Name, back.Count, err)
			}
		})
	}
}

func TestPersonalRouter(t *testing.T) {
	ks := codec.NewMemoryKeyStore()
	reg := personalRegistry(t, codec.Msgpack{}, ks)
	rt, err := codec.NewRouter(reg)
	if err != nil {
		t.Fatal(err)
	}
	typ, data, err := reg.Encode(signed("c"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := rt.DecodeContext(t.Context(), eventstore.Recorded{Event: eventstore.Event{Type: typ, Data: data}})
	if err != nil || ev.(Signed).Email.Value() != marker+"@example.com" {
		t.Fatalf("got %v, %v", ev, err)
	}
}

// TestPersonalConcurrentEncode encodes one value from many goroutines
// (run with -race): copies share their cached ciphertext.
func TestPersonalConcurrentEncode(t *testing.T) {
	reg := personalRegistry(t, codec.Msgpack{}, codec.NewMemoryKeyStore())
	ev := signed("c")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			typ, data, err := reg.Encode(ev)
			if err == nil {
				_, err = reg.Decode(typ, data)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// countingKeyStore counts Key calls, to show the cache at work.
type countingKeyStore struct {
	codec.KeyStore
	mu   sync.Mutex
	keys int
}

func (c *countingKeyStore) Key(ctx context.Context, s string) ([]byte, error) {
	c.mu.Lock()
	c.keys++
	c.mu.Unlock()
	return c.KeyStore.Key(ctx, s)
}

func TestKeyCache(t *testing.T) {
	ctx := t.Context()
	inner := &countingKeyStore{KeyStore: codec.NewMemoryKeyStore()}
	cache := codec.NewKeyCache(inner, 0, 0)
	reg := personalRegistry(t, codec.Msgpack{}, cache)
	typ, data, err := reg.Encode(signed("c"))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := reg.Decode(typ, data); err != nil {
			t.Fatal(err)
		}
	}
	if inner.keys != 0 {
		t.Fatalf("the cache asked the store %d times for a key Create had cached", inner.keys)
	}
	if err := cache.Forget(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Decode(typ, data)
	if err != nil || !got.(Signed).Email.Redacted() {
		t.Fatalf("after Forget through the cache: %v, %v (want redacted)", got, err)
	}

	// A key replaced behind the cache (another process forgot and
	// created it again) is read past the cache once, not taken for
	// corrupt data.
	inner2 := codec.NewMemoryKeyStore()
	cache2 := codec.NewKeyCache(inner2, 0, 0)
	reg2 := personalRegistry(t, codec.Msgpack{}, cache2)
	if _, _, err := reg2.Encode(signed("d")); err != nil { // caches d's key
		t.Fatal(err)
	}
	if err := inner2.Forget(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	typ, data, err = personalRegistry(t, codec.Msgpack{}, inner2).Encode(signed("d"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := reg2.Decode(typ, data); err != nil || got.(Signed).Email.Value() != marker+"@example.com" {
		t.Fatalf("a value under a key created behind the cache: %v, %v", got, err)
	}
}

// TestPersonalNotPrinted: printing an event (a log line, an error) shows
// the subject, never the personal value.
func TestPersonalNotPrinted(t *testing.T) {
	ev := signed("cust-1")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, ev); strings.Contains(got, marker) {
			t.Errorf("%s prints the personal value: %s", verb, got)
		}
	}
}
