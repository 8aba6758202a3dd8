package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// saveBatch records events and saves them, failing the test on error.
func saveBatch(t *testing.T, repo *aggregate.Repository[Counter, CounterEvent], id string, events ...CounterEvent) *aggregate.Aggregate[Counter, CounterEvent] {
	t.Helper()
	a, err := repo.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	a.Record(events...)
	if err := repo.Save(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func adds(n int) []CounterEvent {
	out := make([]CounterEvent, n)
	for i := range out {
		out[i] = Added{By: int64(i + 1)}
	}
	return out
}

// snapshotVersion returns the version of the stored snapshot, 0 if none.
func snapshotVersion(t *testing.T, store eventstore.Store, id string) uint64 {
	t.Helper()
	snap, err := store.LoadSnapshot(t.Context(), id, "")
	if errors.Is(err, eventstore.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	if snap.Schema != "v1" {
		t.Errorf("snapshot schema %q, want v1", snap.Schema)
	}
	return snap.Version
}

// TestSnapshotWhenCrossing: with SnapshotEvery 10, a Save snapshots when it
// crosses a multiple of 10, not only when it lands on one.
func TestSnapshotWhenCrossing(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 10, SnapshotSchema: "v1"})
		steps := []struct {
			batch    int
			snapshot uint64
		}{
			{7, 0},   // 0 -> 7
			{6, 13},  // 7 -> 13 crosses 10
			{6, 13},  // 13 -> 19
			{1, 20},  // 19 -> 20 lands on 20
			{25, 45}, // 20 -> 45 crosses 30 and 40: one snapshot
		}
		for i, st := range steps {
			saveBatch(t, repo, "c", adds(st.batch)...)
			if got := snapshotVersion(t, store, "c"); got != st.snapshot {
				t.Errorf("step %d: snapshot at %d, want %d", i, got, st.snapshot)
			}
		}
		a, err := repo.Load(t.Context(), "c")
		if err != nil {
			t.Fatal(err)
		}
		if a.SnapshotVersion() != 45 || a.Version() != 45 {
			t.Errorf("Load started from snapshot %d at version %d, want 45 and 45", a.SnapshotVersion(), a.Version())
		}
	})
}

// TestSnapshotMatchesReplay is a property test: for random event sequences,
// saved in random batches with a random SnapshotEvery, the state loaded
// from the latest snapshot plus the events after it equals the state
// replayed from the first event. Set ESV2_SEED to replay a failure.
func TestSnapshotMatchesReplay(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ESV2_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("ESV2_SEED: %v", err)
		}
	}
	t.Logf("seed %d (rerun with ESV2_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	store := openSQLite(t, "")
	replay := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{}) // no SnapshotSchema: ignores snapshots
	for round := range 20 {
		every := rng.Uint64N(8) + 1
		snap := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: every, SnapshotSchema: "v1"})
		id := "prop-" + strconv.Itoa(round)
		var version, lastSnapshot uint64
		for range rng.IntN(12) + 1 {
			batch := make([]CounterEvent, rng.IntN(5)+1)
			for i := range batch {
				switch rng.IntN(6) {
				case 0:
					batch[i] = Cleared{}
				case 1:
					batch[i] = Renamed{Name: strconv.Itoa(rng.IntN(100))}
				default:
					batch[i] = Added{By: rng.Int64N(200) - 100}
				}
			}
			saveBatch(t, snap, id, batch...)
			before := version
			version += uint64(len(batch))
			if version/every > before/every {
				lastSnapshot = version
			}

			fromSnapshot, err := snap.Load(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			full, err := replay.Load(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(full.State(), fromSnapshot.State()); diff != "" {
				t.Fatalf("seed %d round %d (every %d) at version %d: snapshot+tail differs from replay (-replay +snapshot):\n%s",
					seed, round, every, version, diff)
			}
			if fromSnapshot.Version() != version || full.Version() != version {
				t.Fatalf("seed %d round %d: versions %d and %d, want %d", seed, round, fromSnapshot.Version(), full.Version(), version)
			}
			if fromSnapshot.SnapshotVersion() != lastSnapshot || full.SnapshotVersion() != 0 {
				t.Fatalf("seed %d round %d (every %d): loaded from snapshot %d, want %d (replay: %d, want 0)",
					seed, round, every, fromSnapshot.SnapshotVersion(), lastSnapshot, full.SnapshotVersion())
			}
		}
	}
}

// TestSnapshotFallback: snapshots with another schema tag, or whose bytes
// do not decode, are ignored: Load rebuilds the state from the events and
// reports the snapshot to the hook and the logger.
func TestSnapshotFallback(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		v1 := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 5, SnapshotSchema: "v1"})
		saveBatch(t, v1, "c", Renamed{Name: "x"}, Added{By: 2}, Added{By: 3}, Cleared{}, Added{By: 4}, Added{By: 5})
		saveBatch(t, v1, "c", Added{By: 6})
		want := Counter{Name: "x", N: 15, Log: []int64{2, 3, 0, 4, 5, 6}}

		var reported snapshotErrors
		logger, logs := logBuffer()
		v2 := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{
			SnapshotEvery: 5, SnapshotSchema: "v2", OnSnapshotError: reported.hook, Logger: logger,
		})
		a, err := v2.Load(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, a.State()); diff != "" || a.SnapshotVersion() != 0 || a.Version() != 7 {
			t.Errorf("schema v2 over a v1 snapshot: from snapshot %d at version %d (want 0, 7); state (-want +got):\n%s",
				a.SnapshotVersion(), a.Version(), diff)
		}
		checkReported(t, reported.get(), aggregate.ErrSnapshotSchema, aggregate.SnapshotError{Op: "load", StreamID: "c", Version: 6, Schema: "v1"})
		if !strings.Contains(logs.String(), "snapshot ignored") || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("logger got %q, want a warning", logs.String())
		}

		// A v1 snapshot whose bytes are garbage.
		if err := store.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "c", Version: 7, Schema: "v1", Data: []byte{0xc1, 0xff}}); err != nil {
			t.Fatal(err)
		}
		var corrupt snapshotErrors
		v1r := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 5, SnapshotSchema: "v1", OnSnapshotError: corrupt.hook})
		a, err = v1r.Load(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, a.State()); diff != "" || a.SnapshotVersion() != 0 {
			t.Errorf("corrupt snapshot: from snapshot %d (want 0); state (-want +got):\n%s", a.SnapshotVersion(), diff)
		}
		checkReported(t, corrupt.get(), codec.ErrMalformed, aggregate.SnapshotError{Op: "load", StreamID: "c", Version: 7, Schema: "v1"})
	})
}

// checkReported checks that exactly one *SnapshotError like want, with a
// cause matching kind, was reported.
func checkReported(t *testing.T, errs []error, kind error, want aggregate.SnapshotError) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("%d snapshot errors reported, want 1: %v", len(errs), errs)
	}
	var se *aggregate.SnapshotError
	if !errors.As(errs[0], &se) || !errors.Is(errs[0], kind) {
		t.Fatalf("reported %v, want a *SnapshotError wrapping %v", errs[0], kind)
	}
	got := *se
	got.Err = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reported snapshot error (-want +got):\n%s", diff)
	}
}

// failingSnapshots is a store whose snapshot saves fail.
type failingSnapshots struct{ eventstore.Store }

var errDiskFull = errors.New("disk full")

func (failingSnapshots) SaveSnapshot(context.Context, eventstore.Snapshot) error { return errDiskFull }

func TestSnapshotSaveFailureDoesNotFailSave(t *testing.T) {
	store := failingSnapshots{openSQLite(t, "")}
	var reported snapshotErrors
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 2, SnapshotSchema: "v1", OnSnapshotError: reported.hook})
	a := saveBatch(t, repo, "c", adds(3)...)
	if a.Version() != 3 {
		t.Errorf("version %d after Save, want 3", a.Version())
	}
	checkReported(t, reported.get(), errDiskFull, aggregate.SnapshotError{Op: "save", StreamID: "c", Version: 3, Schema: "v1"})

	// Without a hook, a logger alone hears of it.
	logger, logs := logBuffer()
	repo = newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 2, SnapshotSchema: "v1", Logger: logger})
	saveBatch(t, repo, "c", adds(1)...)
	if got := logs.String(); !strings.Contains(got, "snapshot not saved") || !strings.Contains(got, "disk full") {
		t.Errorf("logger got %q, want the failed snapshot save", got)
	}
}

func TestSnapshotNameAndEncoding(t *testing.T) {
	store := openSQLite(t, "")
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{
		SnapshotEvery: 2, SnapshotSchema: "v1", SnapshotName: "counter", SnapshotEncoding: codec.JSON{},
	})
	saveBatch(t, repo, "c", Added{By: 4}, Renamed{Name: "n"})
	snap, err := store.LoadSnapshot(t.Context(), "c", "counter")
	if err != nil {
		t.Fatal(err)
	}
	var got Counter
	if err := json.Unmarshal(snap.Data, &got); err != nil {
		t.Fatalf("snapshot is not JSON: %v (%q)", err, snap.Data)
	}
	if diff := cmp.Diff(Counter{Name: "n", N: 4, Log: []int64{4}}, got); diff != "" {
		t.Errorf("snapshot state (-want +got):\n%s", diff)
	}
	if _, err := store.LoadSnapshot(t.Context(), "c", ""); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("snapshot also under the default name: %v", err)
	}
}
