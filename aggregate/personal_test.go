package aggregate_test

import (
	"errors"
	"testing"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
)

type contact struct {
	Phone codec.Personal[string]
}

// TestSnapshotOfPersonalStateNeedsKeyStore: a state with personal fields
// snapshots through the registry's encoding when it has a key store, and
// NewRepository refuses a snapshot encoding without one (every snapshot
// would fail to encode).
func TestSnapshotOfPersonalStateNeedsKeyStore(t *testing.T) {
	store := openSQLite(t, "")
	evolve := func(c contact, _ CounterEvent) contact { return c }
	reg := codec.New[CounterEvent](codec.WithKeyStore(codec.NewMemoryKeyStore()))
	if _, err := aggregate.NewRepository(store, aggregate.Config[contact, CounterEvent]{
		Evolve: evolve, Codec: reg, SnapshotEvery: 10, SnapshotSchema: "v1",
	}); err != nil {
		t.Fatalf("snapshots through the registry's encoding with a key store: %v", err)
	}
	_, err := aggregate.NewRepository(store, aggregate.Config[contact, CounterEvent]{
		Evolve: evolve, Codec: reg, SnapshotEvery: 10, SnapshotSchema: "v1", SnapshotEncoding: codec.JSON{},
	})
	if !errors.Is(err, aggregate.ErrInvalidConfig) || !errors.Is(err, codec.ErrState) {
		t.Fatalf("a snapshot encoding without a key store: %v, want ErrInvalidConfig and ErrState", err)
	}
}
