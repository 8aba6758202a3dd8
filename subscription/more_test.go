package subscription_test

import (
	"context"
	"errors"
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
	waitLive(t, sub)
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

// flaky is a backend whose heartbeats fail while failing is set, as a
// database that cannot be reached.
type flaky struct {
	subscription.Backend[tx]
	mu      sync.Mutex
	failing bool
}

func (f *flaky) set(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = v
}

func (f *flaky) Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error) {
	f.mu.Lock()
	failing := f.failing
	f.mu.Unlock()
	if failing {
		return nil, errors.New("connection refused")
	}
	return f.Backend.Heartbeat(ctx, name, member, ttl)
}

type flakyStore struct {
	*memStore
	f *flaky
}

func (s flakyStore) Subscriptions() subscription.Backend[tx] { return s.f }

// A member that cannot renew its leases past their end shows it holds
// none, with the error, and takes them back once it can.
func TestUnrenewedLeasesShowAsStandby(t *testing.T) {
	t.Parallel()
	m := newStore(t)
	s := flakyStore{m, &flaky{Backend: m.b}}
	sub, err := subscription.New(s, "flaky", (&recorder{}).handle, subscription.WithLeaseTTL(150*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	liveWithOne := func(st subscription.Status) bool { return st.State == subscription.Live && len(st.Partitions) == 1 }
	waitStatus(t, sub, "live with its partition", liveWithOne)
	s.f.set(true)
	waitStatus(t, sub, "on standby with the error", func(st subscription.Status) bool {
		return st.State == subscription.Standby && len(st.Partitions) == 0 && st.Err != nil
	})
	s.f.set(false)
	waitStatus(t, sub, "live again", liveWithOne)
}
