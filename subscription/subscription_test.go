package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/membackend"
	"github.com/esv2/esv2/subscription"
)

// tx is the transaction type of memStore: the reference backend has none.
type tx struct{}

// memStore is an in-memory SQLite store whose subscriptions live in the
// reference backend, so that the loop is tested apart from the adapters'
// backends (which run the backend suite).
type memStore struct {
	*sqlite.Store
	b *membackend.Backend[tx]
}

func (m *memStore) Subscriptions() subscription.Backend[tx] { return m.b }

func newStore(t *testing.T) *memStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &memStore{Store: s, b: membackend.New[tx](nil)}
}

// other returns a second handle on m's subscriptions and events, as
// another process of a group would have.
func (m *memStore) other() *memStore { return &memStore{Store: m.Store, b: m.b.Open()} }

func appendN(t *testing.T, s eventstore.Store, stream string, n int, typ string) uint64 {
	t.Helper()
	events := make([]eventstore.Event, n)
	for i := range events {
		events[i] = eventstore.Event{Type: typ, Data: []byte(fmt.Sprintf("%s-%d", stream, i))}
	}
	res, err := s.Append(context.Background(), stream, eventstore.Any, events...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// recorder is a handler that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []eventstore.Recorded
	fail   func(e eventstore.Recorded) error
}

func (r *recorder) handle(_ context.Context, events []eventstore.Recorded) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range events {
		if r.fail != nil {
			if err := r.fail(e); err != nil {
				return err
			}
		}
	}
	r.events = append(r.events, events...)
	return nil
}

func (r *recorder) positions() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, e := range r.events {
		out = append(out, e.Position)
	}
	return out
}

// start runs sub until the test ends, and returns a func that stops it and
// returns Run's error.
func start(t *testing.T, sub *subscription.Subscription) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, sub *subscription.Subscription, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sub.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor(%d): %v; status %+v", pos, err, sub.Status())
	}
}

// waitStatus waits, with a deadline, until sub's status satisfies cond.
func waitStatus(t *testing.T, sub *subscription.Subscription, what string, cond func(subscription.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(sub.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("never %s: %+v", what, sub.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

func isState(want subscription.State) func(subscription.Status) bool {
	return func(st subscription.Status) bool { return st.State == want }
}

func allPositions(t *testing.T, s eventstore.Store, f eventstore.Filter) []uint64 {
	t.Helper()
	var out []uint64
	for e, err := range s.Read(context.Background(), eventstore.AllStreams, eventstore.ReadOptions{Filter: f}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Position)
	}
	return out
}

func TestDeliversEveryEventInOrderAndResumes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for i := range 5 {
		appendN(t, s, fmt.Sprintf("acct-%d", i), 30, "Deposited")
	}
	rec := &recorder{}
	sub, err := subscription.New(s, "balances", rec.handle, subscription.WithBatchSize(7))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sub)
	head := appendN(t, s, "acct-live", 3, "Deposited")
	waitFor(t, sub, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(allPositions(t, s, eventstore.Filter{}), rec.positions()); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}

	// A new run resumes after the checkpoint.
	head = appendN(t, s, "acct-later", 4, "Deposited")
	rec2 := &recorder{}
	sub2, err := subscription.New(s, "balances", rec2.handle)
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub2)
	waitFor(t, sub2, head)
	if diff := cmp.Diff([]uint64{head - 3, head - 2, head - 1, head}, rec2.positions()); diff != "" {
		t.Fatalf("after restart (-want +got):\n%s", diff)
	}
}

func TestStatusLiveAndLag(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	head := appendN(t, s, "a", 10, "X")
	rec := &recorder{}
	sub, err := subscription.New(s, "st", rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.Status().State; got != subscription.Stopped {
		t.Fatalf("before Run: state %v", got)
	}
	start(t, sub)
	waitFor(t, sub, head)
	waitLive(t, sub)
	st := sub.Status()
	if st.Position != head || st.Lag != 0 || st.Delivered != 10 || !slices.Equal(st.Partitions, []int{0}) {
		t.Fatalf("status %+v, want position %d, lag 0, 10 delivered, partition 0", st, head)
	}
}

func TestFilterAdvancesPastSkippedEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	appendN(t, s, "a", 5, "Wanted")
	head := appendN(t, s, "b", 50, "Other")
	rec := &recorder{}
	sub, err := subscription.New(s, "filtered", rec.handle,
		subscription.WithFilter(eventstore.Filter{Types: []string{"Wanted"}}))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sub)
	waitFor(t, sub, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.positions()); got != 5 {
		t.Fatalf("delivered %d events, want 5", got)
	}
	parts, err := s.b.Partitions(context.Background(), "filtered")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Position != head {
		t.Fatalf("stored partitions %+v, want one at the head %d (past the skipped tail)", parts, head)
	}
}

func TestHandlerErrorStopsAfterRetries(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	head := appendN(t, s, "a", 3, "X")
	boom := errors.New("boom")
	calls := 0
	sub, err := subscription.New(s, "failing", func(context.Context, []eventstore.Recorded) error {
		calls++
		return boom
	}, subscription.WithRetries(2, time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	err = sub.Run(context.Background())
	var he *subscription.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want a *HandlerError wrapping boom", err)
	}
	if he.Attempts != 3 || calls != 3 || he.First != 1 || he.Last != head {
		t.Fatalf("HandlerError %+v after %d calls, want 3 attempts on positions 1..%d", he, calls, head)
	}
	parts, err := s.b.Partitions(context.Background(), "failing")
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Position != 0 {
		t.Fatalf("checkpoint moved to %d past a failed batch", parts[0].Position)
	}
}

func TestParkSetsAsideWhatFailsAndReplays(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	appendN(t, s, "a", 3, "Good")
	bad := appendN(t, s, "b", 1, "Poison")
	head := appendN(t, s, "c", 3, "Good")
	poisoned := true
	var mu sync.Mutex
	rec := &recorder{fail: func(e eventstore.Recorded) error {
		mu.Lock()
		defer mu.Unlock()
		if e.Type == "Poison" && poisoned {
			return errors.New("cannot decode Poison")
		}
		return nil
	}}
	sub, err := subscription.New(s, "parking", rec.handle,
		subscription.WithPolicy(subscription.Park), subscription.WithRetries(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sub)
	waitFor(t, sub, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := allPositions(t, s, eventstore.Filter{Types: []string{"Good"}})
	if diff := cmp.Diff(want, rec.positions()); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	parked, err := subscription.ListParked(context.Background(), s, "parking")
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Position != bad || parked[0].Type != "Poison" ||
		parked[0].Attempts != 2 || parked[0].Error != "cannot decode Poison" {
		t.Fatalf("parked %+v, want the Poison event at %d after 2 attempts", parked, bad)
	}
	if st := sub.Status(); st.Parked != 1 {
		t.Fatalf("status counts %d parked", st.Parked)
	}

	// Still failing: it stays parked.
	if err := sub.ReplayParked(context.Background(), bad); err == nil {
		t.Fatal("replay of a still-failing event succeeded")
	}
	mu.Lock()
	poisoned = false
	mu.Unlock()
	if err := sub.ReplayParked(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	if got := rec.positions(); got[len(got)-1] != bad {
		t.Fatalf("replay did not hand over the event: %v", got)
	}
	parked, err = subscription.ListParked(context.Background(), s, "parking")
	if err != nil || len(parked) != 0 {
		t.Fatalf("after replay: parked %v, %v", parked, err)
	}
	if err := sub.ReplayParked(context.Background(), bad); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("second replay: %v, want ErrNotFound", err)
	}
}

func TestGroupSplitsPartitionsAndKeepsStreamOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	const streams, per = 12, 20
	for i := range streams {
		appendN(t, s, fmt.Sprintf("s-%d", i), per, "X")
	}
	var mu sync.Mutex
	seen := map[string][]uint64{} // stream -> versions, in delivery order
	handler := func() subscription.Handler {
		return func(_ context.Context, events []eventstore.Recorded) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range events {
				seen[e.StreamID] = append(seen[e.StreamID], e.Version)
			}
			return nil
		}
	}
	var subs []*subscription.Subscription
	for i := range 3 {
		name := fmt.Sprintf("m%d", i)
		sub, err := subscription.New(s.other(), "group", handler(),
			subscription.WithPartitions(6), subscription.WithMember(name), subscription.WithBatchSize(5))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
		start(t, sub)
	}
	head := appendN(t, s, "s-0", 1, "X")
	for _, sub := range subs {
		waitFor(t, sub, head)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for stream, versions := range seen {
		total += len(versions)
		// At least once: a stream moved between members may be handed
		// over again, but always in order from where its checkpoint was.
		for i := 1; i < len(versions); i++ {
			if versions[i] != versions[i-1]+1 && versions[i] > versions[i-1] {
				t.Fatalf("stream %s delivered out of order: %v", stream, versions)
			}
		}
	}
	if len(seen) != streams {
		t.Fatalf("%d streams delivered, want %d", len(seen), streams)
	}
	if total < streams*per+1 {
		t.Fatalf("%d events delivered, want at least %d", total, streams*per+1)
	}
}

func TestStandbyTakesOverWhenMemberLeaves(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	appendN(t, s, "a", 5, "X")
	recA, recB := &recorder{}, &recorder{}
	a, err := subscription.New(s.other(), "ha", recA.handle, subscription.WithMember("a"), subscription.WithLeaseTTL(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b, err := subscription.New(s.other(), "ha", recB.handle, subscription.WithMember("b"), subscription.WithLeaseTTL(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stopA := start(t, a)
	waitFor(t, a, 5)
	start(t, b)
	waitStatus(t, b, "on standby", isState(subscription.Standby))
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	head := appendN(t, s, "a", 2, "X")
	waitFor(t, b, head)
	if diff := cmp.Diff([]uint64{6, 7}, recB.positions()); diff != "" {
		t.Fatalf("standby delivered (-want +got):\n%s", diff)
	}
}

func TestResetRedelivers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	head := appendN(t, s, "a", 4, "X")
	rec := &recorder{}
	sub, err := subscription.New(s, "rebuild", rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, sub)
	waitFor(t, sub, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := subscription.Reset(context.Background(), s, "rebuild", eventstore.After(2)); err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	waitFor(t, sub, head)
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 3, 4}, rec.positions()); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	infos, err := subscription.List(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "rebuild" || infos[0].Position != head || infos[0].Lag != 0 {
		t.Fatalf("List = %+v", infos)
	}
	if err := subscription.Reset(context.Background(), s, "nope", eventstore.FromStart()); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("Reset of an unknown subscription: %v", err)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := func(context.Context, []eventstore.Recorded) error { return nil }
	for name, opts := range map[string][]subscription.Option{
		"batch size":  {subscription.WithBatchSize(0)},
		"partitions":  {subscription.WithPartitions(subscription.MaxPartitions + 1)},
		"lease":       {subscription.WithLeaseTTL(time.Millisecond)},
		"member":      {subscription.WithMember("")},
		"retries":     {subscription.WithRetries(-1, 0, 0)},
		"filter":      {subscription.WithFilter(eventstore.Filter{Types: []string{""}})},
		"max wait":    {subscription.WithMaxWait(-time.Second)},
		"policy":      {subscription.WithPolicy(subscription.Policy(9))},
		"poll":        {subscription.WithPollInterval(0)},
		"backoff max": {subscription.WithRetries(1, time.Second, time.Millisecond)},
	} {
		if _, err := subscription.New(s, "x", h, opts...); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("%s: New = %v, want ErrInvalidInput", name, err)
		}
	}
	for _, name := range []string{"", "bad\x00name", string(make([]byte, subscription.MaxNameLen+1)), "\xff"} {
		if _, err := subscription.New(s, name, h); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("name %q: New = %v, want ErrInvalidInput", name, err)
		}
	}
	if _, err := subscription.New(s, "x", nil); !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("nil handler: %v", err)
	}
	sub, err := subscription.New(s, "twice", h)
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	waitStatus(t, sub, "started", func(st subscription.Status) bool { return st.State != subscription.Stopped })
	if err := sub.Run(context.Background()); !errors.Is(err, subscription.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
	// A stored subscription with other partitions is refused.
	other, err := subscription.New(s, "twice", h, subscription.WithPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); !errors.Is(err, subscription.ErrPartitions) {
		t.Fatalf("Run with 4 partitions over 1: %v, want ErrPartitions", err)
	}
}

func TestRunEndsWithClosedStore(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	sub, err := subscription.New(s, "closing", (&recorder{}).handle)
	if err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	g.Go(func() error { return sub.Run(context.Background()) })
	waitLive(t, sub)
	_ = s.Close()
	if err := g.Wait(); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}
