package subscription_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// Before a sync gives a partition up, an at-least-once member writes what
// it handled there, so that the next holder does not hand it over again.
// What it handled differs between partitions while it catches up on one
// it just took: the partition given up must be written at its own handled
// position, not at the lowest of the member's.
func TestGivenUpPartitionIsWrittenAtItsHandledPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const name, ttl, batch = "hand-over", 300 * time.Millisecond, 50
	// Partition 1's events come first, partition 0's after them.
	p1, p0 := streamIn(t, 1, 2), streamIn(t, 0, 2)
	appendN(t, s, p1, 10*batch, "X")
	head := appendN(t, s, p0, 20*batch, "X")
	// Member "b" holds partition 1 at first, so that "a" handles all of
	// partition 0 alone.
	if _, err := s.b.Register(ctx, name, 2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.Heartbeat(ctx, name, "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.Acquire(ctx, name, "b", []int{1}, time.Hour); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	h := func(ctx context.Context, events []eventstore.Recorded) error {
		if events[0].StreamID != p1 {
			return nil
		}
		if first {
			// Hold partition 1's catch-up until member "0" joined.
			first = false
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		time.Sleep(ttl / 8) // the handler's work: the catch-up outlasts a sync period
		return nil
	}
	sub, err := subscription.New(s, name, h, subscription.WithMember("a"), subscription.WithPartitions(2),
		subscription.WithLeaseTTL(ttl), subscription.WithBatchSize(batch), subscription.WithCheckpointInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	deadline := time.Now().Add(20 * time.Second)
	for sub.Status().Position < head {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 never handled up to %d: %+v", head, sub.Status())
		}
		time.Sleep(time.Millisecond)
	}
	// "b" leaves: "a" takes partition 1 at position 0 and catches up on it.
	if err := s.b.Leave(ctx, name, "b"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatalf("partition 1 never handed over: %+v", sub.Status())
	}
	// Member "0" joins: partition 0 is its share now, and "a" gives it up
	// at its next sync, in the middle of partition 1's catch-up.
	if _, err := s.b.Heartbeat(ctx, name, "0", time.Hour); err != nil {
		t.Fatal(err)
	}
	close(release)
	for !slices.Equal(sub.Status().Partitions, []int{1}) {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 never given up: %+v", sub.Status())
		}
		time.Sleep(time.Millisecond)
	}
	parts, err := s.b.Partitions(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Owner != "" || parts[0].Position != head {
		t.Fatalf("partition 0 given up with owner %q at position %d, want none at %d, the position handled there", parts[0].Owner, parts[0].Position, head)
	}
}

// The sync that gives a partition up is the one due a third of the TTL
// after the last renewal, when the leases are no longer fresh: with a TTL
// of up to three seconds (the sync period is then a third of it) that is
// also when they count as expiring. The handled positions must still be
// written before the partition goes.
func TestGivenUpPartitionIsWrittenWithAShortTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const name, ttl = "hand-over-short", 300 * time.Millisecond
	head := appendN(t, s, streamIn(t, 0, 2), 500, "X")
	sub, err := subscription.New(s, name, func(context.Context, []eventstore.Recorded) error { return nil },
		subscription.WithMember("a"), subscription.WithPartitions(2), subscription.WithLeaseTTL(ttl),
		subscription.WithBatchSize(50), subscription.WithCheckpointInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	waitFor(t, sub, head)
	// Member "0" joins: partition 0 is its share now.
	if _, err := s.b.Heartbeat(ctx, name, "0", time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(sub.Status().Partitions, []int{1}) {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 never given up: %+v", sub.Status())
		}
		time.Sleep(time.Millisecond)
	}
	parts, err := s.b.Partitions(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Owner != "" || parts[0].Position != head {
		t.Fatalf("partition 0 given up with owner %q at position %d, want none at %d, the position handled there", parts[0].Owner, parts[0].Position, head)
	}
}
