package aggregate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// TestCommandIDNotStored: the raw command ID reaches neither the event IDs
// nor the metadata, whose digest a reader can recompute; a retry is still
// a no-op, with and without a CommandKey, and the key changes the digests.
func TestCommandIDNotStored(t *testing.T) {
	const cmdID = "client-idempotency-key-ann@example.com"
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"DefaultKey", nil}, {"SecretKey", []byte("0123456789abcdef0123456789abcdef")}} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, store eventstore.Store) {
				ctx := t.Context()
				repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{CommandKey: tc.key})
				two := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil }
				for i := range 3 {
					a, err := repo.Update(ctx, "c", two, aggregate.WithCommandID(cmdID))
					if err != nil {
						t.Fatalf("attempt %d: %v", i+1, err)
					}
					if a.Version() != 2 {
						t.Fatalf("attempt %d: version %d, want 2 (a retry is a no-op)", i+1, a.Version())
					}
				}
				recs, err := eventstore.Collect(store.Read(ctx, "c", eventstore.ReadOptions{}))
				if err != nil {
					t.Fatal(err)
				}
				want := aggregate.CommandDigest(tc.key, cmdID)
				for _, r := range recs {
					if got := r.Metadata[aggregate.CommandMetadataKey]; got != want {
						t.Errorf("event %d: metadata %q, want the digest %q", r.Version, got, want)
					}
					for k, v := range r.Metadata {
						if strings.Contains(k, cmdID) || strings.Contains(v, cmdID) {
							t.Errorf("event %d: metadata %q=%q holds the command ID", r.Version, k, v)
						}
					}
					if strings.Contains(r.ID, cmdID) {
						t.Errorf("event %d: ID %q holds the command ID", r.Version, r.ID)
					}
				}
			})
		})
	}
	if aggregate.CommandDigest(nil, "x") == aggregate.CommandDigest([]byte("k"), "x") {
		t.Error("the key does not change the digest")
	}
	if aggregate.CommandDigest(nil, "x") != aggregate.CommandDigest(aggregate.DefaultCommandKey, "x") {
		t.Error("a nil key is not DefaultCommandKey")
	}
}

// TestCommandKeyChangesEventIDs: with a CommandKey the event IDs are keyed
// too, so that they cannot be matched against guessed command IDs without
// it; without one they are what older versions derived, so that retries of
// commands stored before still find them.
func TestCommandKeyChangesEventIDs(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		one := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
		plain := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
		keyed := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{CommandKey: []byte("secret")})
		if _, err := plain.Update(ctx, "p", one, aggregate.WithCommandID("c1")); err != nil {
			t.Fatal(err)
		}
		if _, err := keyed.Update(ctx, "p", one, aggregate.WithCommandID("c1")); err != nil {
			t.Fatal(err)
		}
		recs, err := eventstore.Collect(store.Read(ctx, "p", eventstore.ReadOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].ID == recs[1].ID {
			t.Fatalf("stored %+v: want 2 events with different IDs", recs)
		}
		// The unkeyed derivation is the one of esv2 before command keys:
		// SHA-256 of stream, NUL, command ID, its first 16 bytes in hex.
		sum := sha256.Sum256([]byte("p\x00c1"))
		if want := "cmd-" + hex.EncodeToString(sum[:16]) + "-0"; recs[0].ID != want {
			t.Errorf("unkeyed event ID %q, want %q", recs[0].ID, want)
		}
	})
}
