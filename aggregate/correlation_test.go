package aggregate_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// TestCorrelationThroughUpdate: the correlation ID of the request's context
// and the command ID as causation arrive in the stored metadata through
// Update, and the position Update reports is the one a subscription then
// reaches and reports (issue 14: read-your-writes).
func TestCorrelationThroughUpdate(t *testing.T) {
	store := openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
	ctx := t.Context()

	var mu sync.Mutex
	var seen []eventstore.Recorded
	sub, err := subscription.New(store.(*sqlite.Store), "read-model", func(_ context.Context, events []eventstore.Recorded) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, events...)
		return nil
	}, subscription.WithCheckpointInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	appendRaw(t, store, "other", eventstore.Event{Type: "noise"})
	reqCtx := eventstore.WithCorrelationID(ctx, "request-7")
	reqCtx = eventstore.WithMetadata(reqCtx, map[string]string{"user": "alice"})
	a, err := repo.Update(reqCtx, "c", func(Counter) ([]CounterEvent, error) {
		return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil
	}, aggregate.WithCommandID("command-1"))
	if err != nil {
		t.Fatal(err)
	}
	appendRaw(t, store, "other", eventstore.Event{Type: "noise"}) // past the command: WaitFor must not need it

	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := sub.WaitFor(waitCtx, a.Position()); err != nil {
		t.Fatalf("WaitFor(%d): %v", a.Position(), err)
	}
	if st := sub.Status(); st.Position < a.Position() {
		t.Errorf("subscription at %d after WaitFor(%d)", st.Position, a.Position())
	}

	mu.Lock()
	defer mu.Unlock()
	var mine []eventstore.Recorded
	for _, e := range seen {
		if e.StreamID == "c" {
			mine = append(mine, e)
		}
	}
	if len(mine) != 2 {
		t.Fatalf("subscription saw %d events of the aggregate, want 2", len(mine))
	}
	if got := mine[1].Position; got != a.Position() {
		t.Errorf("Update reported position %d, the subscription saw its last event at %d", a.Position(), got)
	}
	want := map[string]string{
		eventstore.CorrelationIDKey:  "request-7",
		eventstore.CausationIDKey:    aggregate.CommandDigest(nil, "command-1"),
		aggregate.CommandMetadataKey: aggregate.CommandDigest(nil, "command-1"),
		"user":                       "alice",
	}
	for _, e := range mine {
		if diff := cmp.Diff(want, e.Metadata); diff != "" {
			t.Errorf("event %d metadata (-want +got):\n%s", e.Version, diff)
		}
	}

	// A handler that reacts to an event carries the chain on: CausedBy
	// keeps the correlation and makes the event the cause.
	next, err := repo.Update(eventstore.CausedBy(ctx, mine[1]), "d", func(Counter) ([]CounterEvent, error) {
		return []CounterEvent{Added{By: 1}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := eventstore.Collect(store.Read(ctx, "d", eventstore.ReadOptions{}))
	if err != nil || len(recs) != 1 {
		t.Fatalf("read d: %v, %d events", err, len(recs))
	}
	wantNext := map[string]string{eventstore.CorrelationIDKey: "request-7", eventstore.CausationIDKey: mine[1].ID}
	if diff := cmp.Diff(wantNext, recs[0].Metadata); diff != "" {
		t.Errorf("reaction's metadata (-want +got):\n%s", diff)
	}
	if recs[0].Position != next.Position() {
		t.Errorf("reaction: Update reported %d, stored at %d", next.Position(), recs[0].Position)
	}
}
