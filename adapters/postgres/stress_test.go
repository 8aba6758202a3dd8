package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

type stressOutcome struct {
	stored map[string]string // event ID -> stream@version, for successful appends
	failed []string          // event IDs of refused appends
}

// TestConcurrentAppends: 8 goroutines on each of 2 stores append to the
// same 4 streams with random expectations for a few seconds. Versions stay
// contiguous, every successful append is stored as reported, every refused
// one left nothing, retries of stored batches are reported as duplicates,
// and an AllStreams watcher sees each event exactly once, in position
// order.
func TestConcurrentAppends(t *testing.T) {
	schema := freshSchema(t)
	stores := []*Store{openStore(t, schema), openStore(t, schema)}
	w := startWatch(t, stores[0], eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
	streams := []string{"s0", "s1", "s2", "s3"}
	const perStore = 8
	deadline := time.Now().Add(3 * time.Second)

	outcomes := make([]stressOutcome, len(stores)*perStore)
	var g errgroup.Group
	for i := range outcomes {
		s := stores[i%len(stores)]
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			out := stressOutcome{stored: map[string]string{}}
			known := map[string]uint64{}
			for n := 0; time.Now().Before(deadline); n++ {
				stream := streams[rng.IntN(len(streams))]
				batch := make([]eventstore.Event, 1+rng.IntN(3))
				for j := range batch {
					batch[j] = eventstore.Event{ID: fmt.Sprintf("g%d-%d-%d", i, n, j), Type: "t"}
				}
				var expected eventstore.ExpectedVersion
				switch rng.IntN(8) {
				case 0:
					expected = eventstore.Any
				case 1:
					expected = eventstore.NoStream
				case 2:
					expected = eventstore.StreamExists
				default:
					v := int64(known[stream]) + int64(rng.IntN(3)) - 1
					expected = eventstore.Exact(uint64(max(v, 0)))
				}
				res, err := s.Append(t.Context(), stream, expected, batch...)
				var conflict *eventstore.ConflictError
				switch {
				case errors.As(err, &conflict):
					known[stream] = conflict.Actual
					for _, e := range batch {
						out.failed = append(out.failed, e.ID)
					}
					continue
				case err != nil:
					return fmt.Errorf("append %d events to %s at %s: %w", len(batch), stream, expected, err)
				}
				if res.Appended != len(batch) || len(res.Duplicates) != 0 {
					return fmt.Errorf("append to %s: %+v, want %d appended, no duplicates", stream, res, len(batch))
				}
				known[stream] = res.Version
				for j, e := range batch {
					out.stored[e.ID] = fmt.Sprintf("%s@%d", stream, res.Version-uint64(len(batch)-1-j))
				}
				if rng.IntN(10) == 0 { // a retry: stored already, whatever the expectation
					again, err := s.Append(t.Context(), stream, eventstore.Exact(uint64(rng.IntN(5))), batch...)
					if err != nil || again.Appended != 0 || len(again.Duplicates) != len(batch) {
						return fmt.Errorf("retry of a stored batch on %s: %+v, %v; want all %d duplicates", stream, again, err, len(batch)) //nolint:errorlint // err is the unexpected result described (often nil), not a cause
					}
				}
			}
			outcomes[i] = out
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{}
	var failed []string
	for _, o := range outcomes {
		for id, at := range o.stored {
			want[id] = at
		}
		failed = append(failed, o.failed...)
	}
	all, err := eventstore.Collect(stores[1].Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range all {
		got[r.ID] = fmt.Sprintf("%s@%d", r.StreamID, r.Version)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored events (-appended +read):\n%s", diff)
	}
	for _, id := range failed {
		if at, ok := got[id]; ok {
			t.Errorf("event %s of a refused append is stored at %s", id, at)
		}
	}
	for _, stream := range streams {
		evs, err := eventstore.Collect(stores[0].Read(t.Context(), stream, eventstore.ReadOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range evs {
			if r.Version != uint64(i+1) {
				t.Fatalf("stream %s: event %d has version %d: versions not contiguous", stream, i, r.Version)
			}
		}
	}
	seen := w.next(t, len(all))
	checkIncreasing(t, "watch", seen)
	if diff := cmp.Diff(all, seen); diff != "" {
		t.Errorf("watch vs read (-read +watch):\n%s", diff)
	}
	w.expectNothingBut(t, stores[1])
	t.Logf("%d events stored, %d refused, by %d goroutines on %d stores", len(all), len(failed), len(outcomes), len(stores))
}
