package subscription_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// The partition of a stream is stored implicitly in every checkpoint of a
// partitioned subscription: a different hash would move streams between
// partitions and break their order across an upgrade.
func TestPartitionOfIsStable(t *testing.T) {
	got := map[string]int{}
	for _, id := range []string{"", "account-1", "account-2", "order-42", "ü"} {
		got[id] = subscription.PartitionOf(id, 16)
	}
	want := map[string]int{"": 5, "account-1": 6, "account-2": 3, "order-42": 4, "ü": 10} // FNV-1a, 32 bits, modulo 16
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("PartitionOf changed (-want +got):\n%s", diff)
	}
	if p := subscription.PartitionOf("anything", 1); p != 0 {
		t.Fatalf("one partition: %d", p)
	}
}

func TestMaxWaitFillsALiveBatch(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var mu sync.Mutex
	var sizes []int
	sub, err := subscription.New(s, "waiting", func(_ context.Context, events []eventstore.Recorded) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(events))
		return nil
	}, subscription.WithBatchSize(4), subscription.WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	deadline := time.Now().Add(10 * time.Second)
	for sub.Status().State != subscription.Live {
		if time.Now().After(deadline) {
			t.Fatal("never live")
		}
		time.Sleep(time.Millisecond)
	}
	var last uint64
	for i := range 4 {
		last = appendN(t, s, fmt.Sprintf("s-%d", i), 1, "X")
	}
	waitFor(t, sub, last)
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{4}, sizes); diff != "" {
		t.Fatalf("batch sizes (-want +got):\n%s", diff)
	}
}

// A reset while a member handles a batch ends its lease: its checkpoint is
// refused, and it resumes from the reset position.
func TestLeaseLostMidBatchRedeliversFromTheNewPosition(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	head := appendN(t, s, "a", 3, "X")
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rec := &recorder{}
	sub, err := subscription.New(s, "fenced", func(ctx context.Context, events []eventstore.Recorded) error {
		once.Do(func() {
			close(entered)
			<-release
		})
		return rec.handle(ctx, events)
	}, subscription.WithCheckpointInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	<-entered
	if err := subscription.Reset(context.Background(), s, "fenced", eventstore.After(1)); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, sub, head)
	// The first batch (1..3) was handled, its checkpoint refused; the
	// partition was taken again at position 1.
	if diff := cmp.Diff([]uint64{1, 2, 3, 2, 3}, rec.positions()); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	parts, err := s.b.Partitions(context.Background(), "fenced")
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Position != head {
		t.Fatalf("stored position %d, want %d", parts[0].Position, head)
	}
}
