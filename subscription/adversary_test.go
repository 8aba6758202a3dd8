package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/membackend"
	"github.com/esv2/esv2/subscription"
)

// overlapProbe is a handler shared by the members of a group of one
// partition: it counts the calls in flight and remembers whether two ever
// ran at once, which the package promises does not happen while each call
// ends within a third of the lease TTL.
type overlapProbe struct {
	inFlight atomic.Int32
	overlap  atomic.Bool
	calls    atomic.Int32
	sleep    time.Duration
	fail     func(events []eventstore.Recorded) error
}

func (p *overlapProbe) handle(_ context.Context, events []eventstore.Recorded) error {
	if p.inFlight.Add(1) > 1 {
		p.overlap.Store(true)
	}
	defer p.inFlight.Add(-1)
	p.calls.Add(1)
	time.Sleep(p.sleep) // the handler's work, not synchronisation
	if p.fail != nil {
		return p.fail(events)
	}
	return nil
}

// runGroup starts two members "a" and "b" of subscription name over s, with
// the given options, and returns a func that stops both.
func runGroup(t *testing.T, s *memStore, name string, h subscription.Handler, opts ...subscription.Option) func() {
	t.Helper()
	var stops []func() error
	for _, m := range []string{"a", "b"} {
		st := s
		if m == "b" {
			st = s.other()
		}
		sub, err := subscription.New(st, name, h, append(opts, subscription.WithMember(m))...)
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, start(t, sub))
	}
	return func() {
		for _, stop := range stops {
			_ = stop()
		}
	}
}

// Under the Park policy a failed batch is tried again one event at a time.
// Each of those calls ends well within a third of the TTL, but together
// they last several TTLs: the member must keep its lease while it goes
// through them, or the standby member takes the partition and both hand
// the same stream's events over at once.
func TestParkOneByOneKeepsTheLease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const ttl = 300 * time.Millisecond
	probe := &overlapProbe{sleep: ttl / 10, fail: func(events []eventstore.Recorded) error {
		if len(events) > 1 {
			return errors.New("batch refused: one at a time")
		}
		return nil
	}}
	head := appendN(t, s, "one-stream", 30, "X") // 30 calls of ttl/10: 3 TTLs
	stop := runGroup(t, s, "park-lease", probe.handle,
		subscription.WithLeaseTTL(ttl), subscription.WithPolicy(subscription.Park),
		subscription.WithRetries(0, 0, 0), subscription.WithBatchSize(30))
	defer stop()
	waitStored(t, s, "park-lease", head)
	stop()
	if probe.overlap.Load() {
		t.Fatalf("two members handled the partition at once (%d calls for 30 events)", probe.calls.Load())
	}
}

// A live member waiting WithMaxWait for its batch to fill must not start
// the batch on a lease that has run out (or nearly) meanwhile.
func TestMaxWaitDoesNotOutliveTheLease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const ttl = 150 * time.Millisecond
	var mu sync.Mutex
	var left []time.Duration
	h := func(ctx context.Context, _ []eventstore.Recorded) error {
		parts, err := s.b.Partitions(ctx, "max-wait-lease")
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		left = append(left, time.Until(parts[0].LeaseUntil))
		return nil
	}
	sub, err := subscription.New(s, "max-wait-lease", h, subscription.WithLeaseTTL(ttl),
		subscription.WithMaxWait(time.Second), subscription.WithBatchSize(10))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	waitLive(t, sub)
	head := appendN(t, s, "s", 1, "X")
	waitFor(t, sub, head)
	mu.Lock()
	defer mu.Unlock()
	for _, d := range left {
		// The loop promises two thirds; a third leaves room for a slow
		// machine.
		if d < ttl/3 {
			t.Fatalf("a batch started with %v left on a %v lease (all: %v)", d, ttl, left)
		}
	}
	if len(left) == 0 {
		t.Fatal("handler never called")
	}
}

func waitLive(t *testing.T, sub *subscription.Subscription) {
	t.Helper()
	waitStatus(t, sub, "live", isState(subscription.Live))
}

// waitStored waits until every stored partition of name is at pos.
func waitStored(t *testing.T, s *memStore, name string, pos uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		parts, err := s.b.Partitions(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		reached := len(parts) > 0
		for _, p := range parts {
			reached = reached && p.Position >= pos
		}
		if reached {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored partitions never reached %d: %s", pos, fmt.Sprint(parts))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A subscription deleted while a member runs is created again, from the
// start WithStart gives, by the running member (as Delete's documentation
// says) or by another process's Register: either way the member must hand
// over every event again, not resume from where the deleted one was.
func TestDeleteWhileRunningStartsAgainFromTheStart(t *testing.T) {
	t.Parallel()
	for _, byOther := range []bool{false, true} {
		t.Run(fmt.Sprintf("recreatedByOther=%v", byOther), func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rec := &recorder{}
			sub, err := subscription.New(s, "deleted", rec.handle,
				subscription.WithLeaseTTL(300*time.Millisecond), subscription.WithMember("a"))
			if err != nil {
				t.Fatal(err)
			}
			start(t, sub)
			head := appendN(t, s, "x", 5, "X")
			waitStored(t, s, "deleted", head)
			if err := subscription.Delete(context.Background(), s, "deleted"); err != nil {
				t.Fatal(err)
			}
			seen := len(rec.positions())
			if byOther {
				// What another process's Run does first.
				if _, err := s.b.Register(context.Background(), "deleted", 1, 0); err != nil {
					t.Fatal(err)
				}
			}
			head = appendN(t, s, "x", 2, "X")
			deadline := time.Now().Add(10 * time.Second)
			for {
				parts, err := s.b.Partitions(context.Background(), "deleted")
				if err != nil {
					t.Fatal(err)
				}
				after := map[uint64]bool{}
				for _, p := range rec.positions()[seen:] {
					after[p] = true
				}
				if len(after) == int(head) && len(parts) == 1 && parts[0].Position == head {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the delete: delivered %v, stored %+v, status %+v", rec.positions()[seen:], parts, sub.Status())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// unknownCommit is a backend whose Commit, once armed, commits and then
// reports the outcome unknown, as a connection lost during COMMIT does.
type unknownCommit struct {
	*membackend.Backend[tx]
	armed atomic.Bool
}

func (u *unknownCommit) Commit(ctx context.Context, name, member string, cps []subscription.Lease, fn func(context.Context, tx) error) error {
	err := u.Backend.Commit(ctx, name, member, cps, fn)
	if err == nil && fn != nil && u.armed.CompareAndSwap(true, false) {
		return fmt.Errorf("test: %w: connection lost during COMMIT", eventstore.ErrUnknownOutcome)
	}
	return err
}

type unknownCommitStore struct {
	*sqlite.Store
	b *unknownCommit
}

func (s *unknownCommitStore) Subscriptions() subscription.Backend[tx] { return s.b }

// A transactional handler's batch whose COMMIT went through, though Commit
// reported an error, must not be applied again: the read model and the
// checkpoint committed together, so the batch is to be handed over again
// only from the stored checkpoint, not from the member's memory (nor
// retried on the spot).
func TestUnknownCommitOutcomeIsNotAppliedTwice(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 3} {
		t.Run(fmt.Sprintf("retries=%d", retries), func(t *testing.T) {
			t.Parallel()
			st, err := sqlite.Open(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			s := &unknownCommitStore{Store: st, b: &unknownCommit{Backend: membackend.New[tx](nil)}}
			s.b.armed.Store(true)
			var mu sync.Mutex
			applied := map[uint64]int{} // the read model: committed with the checkpoint
			sub, err := subscription.NewTx(s, "unknown", func(_ context.Context, _ tx, events []eventstore.Recorded) error {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range events {
					applied[e.Position]++
				}
				return nil
			}, subscription.WithRetries(retries, time.Millisecond, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			head := appendN(t, s, "a", 5, "X")
			start(t, sub)
			waitFor(t, sub, head)
			mu.Lock()
			defer mu.Unlock()
			want := map[uint64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
			if diff := cmp.Diff(want, applied); diff != "" {
				t.Fatalf("applications per position (-want +got):\n%s", diff)
			}
		})
	}
}

// A handler that panics ends Run with the panic, but the member must still
// give its partitions up on the way out, as on any other way out: another
// member then takes them at once rather than after the lease TTL.
func TestPanickingHandlerReleasesThePartitions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	head := appendN(t, s, "a", 3, "X")
	sub, err := subscription.New(s, "panics", func(context.Context, []eventstore.Recorded) error { panic("handler bug") },
		subscription.WithMember("a"), subscription.WithLeaseTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "handler bug" {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		_ = sub.Run(context.Background())
	}()
	if st := sub.Status(); st.State != subscription.Stopped {
		t.Fatalf("status after the panic %+v, want stopped", st)
	}
	rec := &recorder{}
	other, err := subscription.New(s.other(), "panics", rec.handle,
		subscription.WithMember("b"), subscription.WithLeaseTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	start(t, other)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // well below the TTL
	defer cancel()
	if err := other.WaitFor(ctx, head); err != nil {
		t.Fatalf("the other member did not take over: %v; its status %+v", err, other.Status())
	}
}
