package subscription_test

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// acquireLog is a backend that notes when each of member's Acquire calls
// began: a lease granted by one lasts ttl from then.
type acquireLog struct {
	subscription.Backend[tx]
	member string
	mu     sync.Mutex
	at     []time.Time
}

func (a *acquireLog) Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]subscription.Lease, error) {
	if member == a.member {
		a.mu.Lock()
		a.at = append(a.at, time.Now())
		a.mu.Unlock()
	}
	return a.Backend.Acquire(ctx, name, member, want, ttl)
}

type acquireLogStore struct {
	*memStore
	b *acquireLog
}

func (s *acquireLogStore) Subscriptions() subscription.Backend[tx] { return s.b }

// Read reads as a slower database does: a millisecond every hundred
// events yielded, and one for every 50 positions of a bounded read's
// range (the rows a database scans to select a group member's
// partitions), so that reading the test's backlog lasts several lease
// TTLs whatever the machine.
func (s *acquireLogStore) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) {
		if after, _ := opts.From.Cursor(); opts.Until > after {
			time.Sleep(time.Duration(opts.Until-after) * time.Millisecond / 50) // the database's work, not synchronisation
		}
		i := 0
		for e, err := range s.memStore.Read(ctx, streamID, opts) {
			if i++; i%100 == 0 {
				time.Sleep(time.Millisecond) // the database's work, not synchronisation
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// streamIn returns a stream name whose events land in partition p of n.
func streamIn(t *testing.T, p, n int) string {
	t.Helper()
	for i := range 1000 {
		if id := fmt.Sprintf("s-%d", i); subscription.PartitionOf(id, n) == p {
			return id
		}
	}
	t.Fatalf("no stream in partition %d of %d", p, n)
	return ""
}

// A member whose partitions have no event in a long backlog goes through
// the other members' events (in the database, or in the front for a store
// that cannot select partitions), handing nothing over: it must still
// renew its lease (and look at its group) on time meanwhile, which it does
// between reads of windows of the log sized for it. Otherwise the lease runs out under a member that is working: its
// partitions pass to another member, and one that joins waits for the
// whole Read to get its share.
func TestLongReadOfOthersEventsKeepsTheLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newStore(t)
	s := &acquireLogStore{memStore: m, b: &acquireLog{Backend: m.b, member: "a"}}
	// A TTL long enough that one page read, under the race detector on a
	// loaded machine, stays well within it (at 150ms a CI run under load
	// saw 202ms between renewals; at 400ms, with a load average of 15 on
	// 2 cores, 496ms), and short next to the whole Read (at least 3s of
	// the simulated database's work for 100,000 events).
	const name, ttl = "long-read", time.Second
	// Member "b" holds partition 1, where every event goes, for the whole
	// test, and never handles anything; "a" gets partition 0.
	if _, err := m.b.Register(ctx, name, 2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.b.Heartbeat(ctx, name, "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.b.Acquire(ctx, name, "b", []int{1}, time.Hour); err != nil {
		t.Fatal(err)
	}
	stream := streamIn(t, 1, 2)
	var head uint64
	for range 10 {
		head = appendN(t, m, stream, 10_000, "X")
	}
	sub, err := subscription.New(s, name, func(context.Context, []eventstore.Recorded) error {
		t.Error("handler called: partition 0 has no events")
		return nil
	}, subscription.WithMember("a"), subscription.WithPartitions(2), subscription.WithLeaseTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	start(t, sub)
	deadline := time.Now().Add(time.Minute)
	for sub.Status().Position < head {
		if time.Now().After(deadline) {
			t.Fatalf("never read up to %d: %+v", head, sub.Status())
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(began)
	if took < 2*ttl {
		t.Fatalf("the read took %v, too short next to the %v lease to show anything", took, ttl)
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if len(s.b.at) == 0 {
		t.Fatal("member a never acquired its partition")
	}
	var longest time.Duration
	for i := 1; i < len(s.b.at); i++ {
		longest = max(longest, s.b.at[i].Sub(s.b.at[i-1]))
	}
	longest = max(longest, time.Since(s.b.at[len(s.b.at)-1]))
	if longest >= ttl {
		t.Fatalf("reading %d events of other members' partitions took %v, and member a went %v without renewing its %v lease (%d acquires)",
			head, took, longest, ttl, len(s.b.at))
	}
	t.Logf("read %d events in %v; longest time between renewals %v", head, took, longest)
}
