package membackend_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/membackend"
	"github.com/esv2/esv2/subscription"
)

// clock is a hand-moved time for the backend's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newBackend(t *testing.T) (*membackend.Backend[int], *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := membackend.New(func() int { return 42 })
	b.Now = c.now
	return b, c
}

// must returns v, after failing t when err is not nil: must(call())(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestRegister(t *testing.T) {
	ctx := t.Context()
	b, _ := newBackend(t)
	if got := must(b.Register(ctx, "s", 3, 7))(t); got != 3 {
		t.Errorf("Register new: %d, want 3", got)
	}
	if got := must(b.Register(ctx, "s", 5, 0))(t); got != 3 {
		t.Errorf("Register existing: %d, want the stored 3", got)
	}
	for _, p := range must(b.Partitions(ctx, "s"))(t) {
		if p.Position != 7 {
			t.Errorf("partition %d at %d, want 7", p.Partition, p.Position)
		}
	}
}

func TestHeartbeatForgetsExpired(t *testing.T) {
	ctx := t.Context()
	b, c := newBackend(t)
	must(b.Register(ctx, "s", 1, 0))(t)
	must(b.Heartbeat(ctx, "s", "b", time.Second))(t)
	must(b.Heartbeat(ctx, "s", "c", 3*time.Second))(t)
	if diff := cmp.Diff([]string{"a", "b", "c"}, must(b.Heartbeat(ctx, "s", "a", time.Second))(t)); diff != "" {
		t.Errorf("live members (-want +got):\n%s", diff)
	}
	c.advance(2 * time.Second)
	if diff := cmp.Diff([]string{"a", "c"}, must(b.Heartbeat(ctx, "s", "a", time.Second))(t)); diff != "" {
		t.Errorf("live members after b's time (-want +got):\n%s", diff)
	}
}

func TestAcquireAndCommit(t *testing.T) {
	ctx := t.Context()
	b, c := newBackend(t)
	must(b.Register(ctx, "s", 2, 0))(t)
	got := must(b.Acquire(ctx, "s", "a", []int{0, 1}, time.Second))(t)
	want := []subscription.Lease{{Partition: 0, Epoch: 1}, {Partition: 1, Epoch: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("a's leases (-want +got):\n%s", diff)
	}
	if got := must(b.Acquire(ctx, "s", "b", []int{0, 1}, time.Second))(t); len(got) != 0 {
		t.Errorf("b took live leases: %+v", got)
	}
	c.advance(time.Second)
	got = must(b.Acquire(ctx, "s", "b", []int{1}, time.Second))(t)
	if diff := cmp.Diff([]subscription.Lease{{Partition: 1, Epoch: 2}}, got); diff != "" {
		t.Errorf("b's leases after a's ended (-want +got):\n%s", diff)
	}

	// a still owns partition 0 (its lease ended, but no one took it), not 1.
	err := b.Commit(ctx, "s", "a", []subscription.Lease{{Partition: 0, Epoch: 1, Position: 5}, {Partition: 1, Epoch: 1, Position: 5}}, nil)
	if !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit of a lost lease: %v, want ErrLeaseLost", err)
	}
	var tx int
	if err := b.Commit(ctx, "s", "a", []subscription.Lease{{Partition: 0, Epoch: 1, Position: 5}}, func(_ context.Context, got int) error {
		tx = got
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if tx != 42 {
		t.Errorf("fn got tx %d, want newTx's 42", tx)
	}
	if err := b.Commit(ctx, "s", "a", []subscription.Lease{{Partition: 0, Epoch: 1, Position: 3}}, nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := b.Commit(ctx, "s", "a", []subscription.Lease{{Partition: 0, Epoch: 1, Position: 9}}, func(context.Context, int) error { return boom }); err != boom { //nolint:errorlint // the contract: fn's error as it is, not wrapped
		t.Errorf("Commit with failing fn: %v, want fn's error as is", err)
	}
	var pos []uint64
	for _, p := range must(b.Partitions(ctx, "s"))(t) {
		pos = append(pos, p.Position)
	}
	if diff := cmp.Diff([]uint64{5, 0}, pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}

	if err := b.Reset(ctx, "s", 1); err != nil {
		t.Fatal(err)
	}
	err = b.Commit(ctx, "s", "b", []subscription.Lease{{Partition: 1, Epoch: 2, Position: 5}}, nil)
	if !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit after Reset: %v, want ErrLeaseLost", err)
	}
}

func TestParked(t *testing.T) {
	ctx := t.Context()
	b, _ := newBackend(t)
	must(b.Register(ctx, "s", 1, 0))(t)
	for _, p := range []subscription.Parked{{Position: 9, Error: "x"}, {Position: 3}, {Position: 9, Error: "y"}} {
		if err := b.Park(ctx, "s", p); err != nil {
			t.Fatal(err)
		}
	}
	want := []subscription.Parked{{Position: 3}, {Position: 9, Error: "y"}}
	if diff := cmp.Diff(want, must(b.Parked(ctx, "s"))(t)); diff != "" {
		t.Errorf("parked (-want +got):\n%s", diff)
	}
	boom := errors.New("boom")
	if err := b.Unpark(ctx, "s", 3, func(context.Context, int) error { return boom }); err != boom { //nolint:errorlint // the contract: fn's error as it is, not wrapped
		t.Errorf("Unpark with failing fn: %v, want fn's error", err)
	}
	if err := b.Unpark(ctx, "s", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Unpark(ctx, "s", 3, nil); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Unpark again: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Parked(ctx, "s"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Parked after Delete: %v, want ErrNotFound", err)
	}
}

func TestCloseAndOpen(t *testing.T) {
	ctx := t.Context()
	b, _ := newBackend(t)
	other := b.Open()
	must(b.Register(ctx, "s", 1, 0))(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Partitions(ctx, ""); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Partitions after Close: %v, want ErrClosed", err)
	}
	if err := b.Commit(ctx, "s", "a", nil, nil); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	if got := must(other.Partitions(ctx, ""))(t); len(got) != 1 {
		t.Errorf("the other handle sees %d partitions, want 1", len(got))
	}
}
