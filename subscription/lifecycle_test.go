package subscription_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

// A subscription across deletions (issue 12), on each adapter: its
// checkpoint is not moved by a deletion, a run after one delivers the
// surviving events it had not had, each once, a new subscription's
// catch-up skips the removed positions, and WaitFor on a position whose
// event was deleted returns instead of waiting for it.
func TestSubscriptionAcrossDeletionOnSQLite(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	acrossDeletion(t, s)
}

func TestSubscriptionAcrossDeletionOnPostgres(t *testing.T) {
	t.Parallel()
	s, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.WithSchema(pgtest.FreshSchema(t, "esv2_sublife_")), postgres.WithMigrate())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	acrossDeletion(t, s)
}

type lifecycleStore[Tx any] interface {
	subscription.Store[Tx]
	eventstore.Lifecycle
}

func acrossDeletion[Tx any](t *testing.T, s lifecycleStore[Tx]) {
	ctx := t.Context()
	appendN(t, s, "a", 1, "T")
	appendN(t, s, "b", 1, "T")
	appendN(t, s, "a", 1, "T")
	p4 := appendN(t, s, "b", 1, "T")
	rec := &recorder{}
	sub, err := subscription.New(s, "model", rec.handle, subscription.WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sub)
	waitFor(t, sub, p4)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkpoint := func() uint64 {
		t.Helper()
		parts, err := s.Subscriptions().Partitions(ctx, "model")
		if err != nil || len(parts) != 1 {
			t.Fatalf("Partitions: %v, %v", parts, err)
		}
		return parts[0].Position
	}
	if got := checkpoint(); got != p4 {
		t.Fatalf("checkpoint %d, want %d", got, p4)
	}
	if err := s.DeleteStream(ctx, "a", eventstore.Any); err != nil {
		t.Fatal(err)
	}
	if got := checkpoint(); got != p4 {
		t.Errorf("checkpoint after the deletion: %d, want %d (untouched)", got, p4)
	}
	p5 := appendN(t, s, "c", 1, "T")
	// The newest events, deleted while the subscription is stopped: their
	// positions never come, and waiting for them must not hang.
	p7 := appendN(t, s, "d", 2, "T")
	if err := s.DeleteStream(ctx, "d", eventstore.Exact(2)); err != nil {
		t.Fatal(err)
	}
	stop = start(t, sub)
	waitFor(t, sub, p5)
	waitFor(t, sub, p7)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(rec.snapshot()), []string{"a@1", "b@1", "a@2", "b@2", "c@1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (each once, in order)", got, want)
	}
	// A new subscription catches up over the removed positions.
	fresh := &recorder{}
	sub2, err := subscription.New(s, "fresh", fresh.handle)
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub2)
	waitFor(t, sub2, p7)
	if got, want := keys(fresh.snapshot()), []string{"b@1", "b@2", "c@1"}; !slices.Equal(got, want) {
		t.Errorf("new subscription delivered %v, want %v", got, want)
	}
	// Live: a deletion at the head, then an append, while it runs.
	p8 := appendN(t, s, "e", 1, "T")
	waitFor(t, sub2, p8)
	if err := s.DeleteStream(ctx, "e", eventstore.Any); err != nil {
		t.Fatal(err)
	}
	p9 := appendN(t, s, "f", 1, "T")
	waitFor(t, sub2, p9)
	if got, want := keys(fresh.snapshot()), []string{"b@1", "b@2", "c@1", "e@1", "f@1"}; !slices.Equal(got, want) {
		t.Errorf("live subscription delivered %v, want %v", got, want)
	}
}

func keys(events []eventstore.Recorded) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s@%d", e.StreamID, e.Version)
	}
	return out
}

func (r *recorder) snapshot() []eventstore.Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}
