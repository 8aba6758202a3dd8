// Package keystoretest is the conformance suite of [codec.KeyStore]: every
// implementation runs it from its own tests,
//
//	func TestKeyStore(t *testing.T) {
//		keystoretest.Run(t, func(t *testing.T) codec.KeyStore { return codec.NewMemoryKeyStore() })
//	}
//
// as esv2's own key stores do (codec.MemoryKeyStore, codec.KeyCache, and
// the SQLite and PostgreSQL adapters' key tables).
package keystoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/codec"
)

// Run runs the conformance cases against key stores made by newKeyStore,
// which is called once per case with that case's t (register cleanups on
// it). Each case uses subjects of its own, so a factory may hand out
// key stores over one database.
func Run(t *testing.T, newKeyStore func(t *testing.T) codec.KeyStore) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ks := newKeyStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.run(ctx, t, ks, subjectPrefix(t))
		})
	}
}

// subjectPrefix makes the subjects of one case unique across runs of the
// suite over one database.
func subjectPrefix(t *testing.T) string {
	return fmt.Sprintf("%s/%d/", t.Name(), time.Now().UnixNano())
}

var cases = []struct {
	name string
	run  func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string)
}{
	{"Key/Unknown", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		if _, err := ks.Key(ctx, p+"nobody"); !errors.Is(err, codec.ErrKeyNotFound) {
			t.Fatalf("Key of an unknown subject: got %v, want ErrKeyNotFound", err)
		}
	}},
	{"Create/ThenKey", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		key := mustCreate(ctx, t, ks, p+"ann")
		if len(key) != codec.KeySize {
			t.Fatalf("Create returned %d bytes, want %d", len(key), codec.KeySize)
		}
		if bytes.Equal(key, make([]byte, codec.KeySize)) {
			t.Fatal("Create returned an all-zero key")
		}
		got, err := ks.Key(ctx, p+"ann")
		if err != nil {
			t.Fatalf("Key after Create: %v", err)
		}
		if !bytes.Equal(got, key) {
			t.Fatal("Key after Create returned another key than Create")
		}
		if again := mustCreate(ctx, t, ks, p+"ann"); !bytes.Equal(again, key) {
			t.Fatal("a second Create returned a new key: values sealed under the first could not be opened")
		}
	}},
	{"Create/KeysDiffer", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		a, b := mustCreate(ctx, t, ks, p+"a"), mustCreate(ctx, t, ks, p+"b")
		if bytes.Equal(a, b) {
			t.Fatal("two subjects got the same key")
		}
	}},
	{"Create/ReturnedKeyIsACopy", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		key := mustCreate(ctx, t, ks, p+"a")
		want := bytes.Clone(key)
		clear(key)
		got, err := ks.Key(ctx, p+"a")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("changing the bytes Create returned changed the stored key")
		}
	}},
	{"Create/Concurrent", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		const n = 8
		keys := make([][]byte, n)
		var g errgroup.Group
		for i := range n {
			g.Go(func() error {
				k, err := ks.Create(ctx, p+"race")
				keys[i] = k
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("concurrent Create: %v", err)
		}
		for i := 1; i < n; i++ {
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("concurrent Creates of one subject returned different keys (#0 and #%d)", i)
			}
		}
	}},
	{"Forget/ThenKeyNotFound", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		mustCreate(ctx, t, ks, p+"ann")
		keep := mustCreate(ctx, t, ks, p+"bob")
		if err := ks.Forget(ctx, p+"ann"); err != nil {
			t.Fatalf("Forget: %v", err)
		}
		if _, err := ks.Key(ctx, p+"ann"); !errors.Is(err, codec.ErrKeyNotFound) {
			t.Fatalf("Key after Forget: got %v, want ErrKeyNotFound", err)
		}
		got, err := ks.Key(ctx, p+"bob")
		if err != nil || !bytes.Equal(got, keep) {
			t.Fatalf("Forget of one subject changed another's key (err %v)", err)
		}
	}},
	{"Forget/Unknown", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		if err := ks.Forget(ctx, p+"nobody"); err != nil {
			t.Fatalf("Forget of an unknown subject: %v", err)
		}
		mustCreate(ctx, t, ks, p+"twice")
		for i := range 2 {
			if err := ks.Forget(ctx, p+"twice"); err != nil {
				t.Fatalf("Forget #%d: %v", i+1, err)
			}
		}
	}},
	{"Forget/CreateAgainMakesNewKey", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		old := mustCreate(ctx, t, ks, p+"ann")
		if err := ks.Forget(ctx, p+"ann"); err != nil {
			t.Fatal(err)
		}
		if renewed := mustCreate(ctx, t, ks, p+"ann"); bytes.Equal(renewed, old) {
			t.Fatal("Create after Forget returned the forgotten key")
		}
	}},
	{"Forget/AfterKeyRead", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		// A cache filled by Key must not outlive Forget.
		mustCreate(ctx, t, ks, p+"ann")
		for range 3 {
			if _, err := ks.Key(ctx, p+"ann"); err != nil {
				t.Fatal(err)
			}
		}
		if err := ks.Forget(ctx, p+"ann"); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Key(ctx, p+"ann"); !errors.Is(err, codec.ErrKeyNotFound) {
			t.Fatalf("Key after Forget: got %v, want ErrKeyNotFound", err)
		}
	}},
	{"Subject/Unusual", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		for _, s := range []string{"ä ö 🙂", "'; DROP TABLE subject_keys; --", "a%_\\b", strings.Repeat("x", 200)} {
			key := mustCreate(ctx, t, ks, p+s)
			got, err := ks.Key(ctx, p+s)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("subject %q: Key after Create: %v", s, err)
			}
		}
		if _, err := ks.Key(ctx, p+"a%"); !errors.Is(err, codec.ErrKeyNotFound) {
			t.Fatalf("a subject matched another as a pattern: %v", err)
		}
	}},
	{"Subject/Invalid", func(ctx context.Context, t *testing.T, ks codec.KeyStore, _ string) {
		for _, s := range []string{"", "a\x00b", "\xff", strings.Repeat("x", 1000)} {
			if _, err := ks.Create(ctx, s); !errors.Is(err, codec.ErrInvalidSubject) {
				t.Errorf("Create(%q): got %v, want ErrInvalidSubject", s, err)
			}
			if _, err := ks.Key(ctx, s); !errors.Is(err, codec.ErrInvalidSubject) {
				t.Errorf("Key(%q): got %v, want ErrInvalidSubject", s, err)
			}
			if err := ks.Forget(ctx, s); !errors.Is(err, codec.ErrInvalidSubject) {
				t.Errorf("Forget(%q): got %v, want ErrInvalidSubject", s, err)
			}
		}
	}},
	{"Context/Cancelled", func(ctx context.Context, t *testing.T, ks codec.KeyStore, p string) {
		mustCreate(ctx, t, ks, p+"ann")
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := ks.Create(done, p+"bob"); !errors.Is(err, context.Canceled) {
			t.Errorf("Create with a cancelled context: got %v, want context.Canceled", err)
		}
		if err := ks.Forget(done, p+"ann"); !errors.Is(err, context.Canceled) {
			t.Errorf("Forget with a cancelled context: got %v, want context.Canceled", err)
		}
		if _, err := ks.Key(ctx, p+"ann"); err != nil {
			t.Errorf("a Forget with a cancelled context forgot the key: %v", err)
		}
		if _, err := ks.Key(ctx, p+"bob"); !errors.Is(err, codec.ErrKeyNotFound) {
			t.Errorf("a Create with a cancelled context created a key: %v", err)
		}
	}},
}

func mustCreate(ctx context.Context, t *testing.T, ks codec.KeyStore, subject string) []byte {
	t.Helper()
	key, err := ks.Create(ctx, subject)
	if err != nil {
		t.Fatalf("Create(%q): %v", subject, err)
	}
	return key
}
