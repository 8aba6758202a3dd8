package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

// Replays requested from another store handle, as the esv2 command makes
// them from another process: the running members replay them, each the
// events of the partitions it holds.
func TestRequestedReplayReference(t *testing.T) {
	t.Parallel()
	for _, txn := range []bool{false, true} {
		t.Run(fmt.Sprintf("txn=%v", txn), func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			runRequestedReplay(t, s, s.other(), txn)
		})
	}
}

func TestRequestedReplayOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	runRequestedReplay(t, open(), open(), true)
}

func TestRequestedReplayOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	schema := pgtest.FreshSchema(t, "esv2_subtest_")
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMigrate())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	runRequestedReplay(t, open(), open(), true)
}

// runRequestedReplay parks events of two streams with a failing handler in
// a group of two members, requests a replay of one through other (a
// second handle: the handler fails again, so it stays parked with its
// request cleared and the new error), fixes the handler, requests a replay
// of all of them, and sees each handled, by the member holding its
// partition, and forgotten.
func runRequestedReplay[Tx any](t *testing.T, s, other subscription.Store[Tx], txn bool) {
	t.Helper()
	ctx := t.Context()
	var broken atomic.Bool
	broken.Store(true)
	var failures atomic.Int64
	var mu sync.Mutex
	handledBy := map[uint64]string{} // position of a Bad event -> member that handled it
	handle := func(member string, events []eventstore.Recorded) error {
		for _, e := range events {
			if e.Type != "Bad" {
				continue
			}
			if broken.Load() {
				return fmt.Errorf("broken, failure %d", failures.Add(1))
			}
			mu.Lock()
			handledBy[e.Position] = member
			mu.Unlock()
		}
		return nil
	}
	const partitions = 4
	// Two streams in different partitions.
	streams := []string{"bad-0"}
	for i := 1; len(streams) < 2; i++ {
		id := fmt.Sprintf("bad-%d", i)
		if subscription.PartitionOf(id, partitions) != subscription.PartitionOf(streams[0], partitions) {
			streams = append(streams, id)
		}
	}
	appendN(t, s, "good", 2, "Good")
	appendN(t, s, streams[0], 1, "Bad")
	appendN(t, s, streams[1], 1, "Bad")
	head := appendN(t, s, "good", 1, "Good")

	var hookOK, hookFailed atomic.Int64
	hooks := subscription.Hooks{Replayed: func(_ context.Context, name string, _ subscription.Parked, err error) {
		if name != "replay" {
			t.Errorf("Replayed hook called for %q", name)
		}
		if err != nil {
			hookFailed.Add(1)
		} else {
			hookOK.Add(1)
		}
	}}
	var members []*subscription.Subscription
	for _, m := range []string{"a", "b"} {
		opts := []subscription.Option{subscription.WithPartitions(partitions), subscription.WithMember(m),
			subscription.WithPolicy(subscription.Park), subscription.WithRetries(0, 0, 0), subscription.WithHooks(hooks)}
		var sub *subscription.Subscription
		var err error
		if txn {
			sub, err = subscription.NewTx(s, "replay", func(_ context.Context, _ Tx, events []eventstore.Recorded) error {
				return handle(m, events)
			}, opts...)
		} else {
			sub, err = subscription.New(s, "replay", func(_ context.Context, events []eventstore.Recorded) error {
				return handle(m, events)
			}, opts...)
		}
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, sub)
		start(t, sub)
	}
	for _, m := range members {
		waitStatus(t, m, "holding two partitions", func(st subscription.Status) bool { return len(st.Partitions) == 2 })
		waitFor(t, m, head)
	}
	parked, err := subscription.ListParked(ctx, other, "replay")
	if err != nil || len(parked) != 2 {
		t.Fatalf("ListParked: %+v, %v; want the two Bad events", parked, err)
	}
	first := parked[0]
	if !first.ReplayRequested.IsZero() {
		t.Errorf("a parked event shows a replay request before any: %+v", first)
	}

	// The handler fails again: the event stays parked, its request cleared.
	before := time.Now()
	if n, err := subscription.RequestReplay(ctx, other, "replay", first.Position); err != nil || n != 1 {
		t.Fatalf("RequestReplay(%d): %d, %v", first.Position, n, err)
	}
	if ps, err := subscription.ListParked(ctx, other, "replay"); err != nil || ps[0].ReplayRequested.IsZero() || !ps[1].ReplayRequested.IsZero() {
		t.Fatalf("ListParked after the request: %+v, %v; want the first requested only", ps, err)
	}
	again := waitParked(t, other, "the failed replay's request cleared", func(ps []subscription.Parked) bool {
		return len(ps) == 2 && ps[0].ReplayRequested.IsZero()
	})[0]
	if again.Error == first.Error || again.Attempts != first.Attempts+1 || again.Time.Before(before.Truncate(time.Second)) {
		t.Errorf("after a failed replay: %+v, want a new error, one more attempt and a new time than %+v", again, first)
	}
	// The member counts after it wrote: wait for the counts too.
	sum := func(f func(subscription.Status) uint64) func() uint64 {
		return func() uint64 {
			n := uint64(0)
			for _, m := range members {
				n += f(m.Status())
			}
			return n
		}
	}
	waitCount(t, "Status().ReplayFailed over the members", sum(func(st subscription.Status) uint64 { return st.ReplayFailed }), 1)
	waitCount(t, "failures reported to the Replayed hook", func() uint64 { return uint64(hookFailed.Load()) }, 1)

	// Fixed: every requested event is handled once and forgotten.
	broken.Store(false)
	if n, err := subscription.RequestReplayAll(ctx, other, "replay"); err != nil || n != 2 {
		t.Fatalf("RequestReplayAll: %d, %v; want 2 marked", n, err)
	}
	waitParked(t, other, "the replayed events forgotten", func(ps []subscription.Parked) bool { return len(ps) == 0 })
	waitCount(t, "Status().Replayed over the members", sum(func(st subscription.Status) uint64 { return st.Replayed }), 2)
	waitCount(t, "successes reported to the Replayed hook", func() uint64 { return uint64(hookOK.Load()) }, 2)
	mu.Lock()
	defer mu.Unlock()
	replayed := uint64(0)
	for _, m := range members {
		st := m.Status()
		replayed += st.Replayed
		for pos, by := range handledBy {
			stream := streams[0]
			if pos != parked[0].Position {
				stream = streams[1]
			}
			if holds := slices.Contains(st.Partitions, subscription.PartitionOf(stream, partitions)); holds != (by == st.Member) {
				t.Errorf("event %d of %s (partition %d) replayed by %q; member %q holds %v", pos, stream, subscription.PartitionOf(stream, partitions), by, st.Member, st.Partitions)
			}
		}
	}
	if len(handledBy) != 2 || replayed != 2 {
		t.Errorf("replayed %v (Status().Replayed %d over the members), want both Bad events once", handledBy, replayed)
	}
	if hookOK.Load() != 2 || hookFailed.Load() != 1 {
		t.Errorf("Replayed hook: %d successes, %d failures; want 2 and 1", hookOK.Load(), hookFailed.Load())
	}
	if _, err := subscription.RequestReplay(ctx, other, "replay", first.Position); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("RequestReplay of a replayed event: %v, want ErrNotFound", err)
	}
}

// waitCount waits, with a deadline, until count returns want, and fails
// if it returns more.
func waitCount(t *testing.T, what string, count func() uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := count()
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitParked waits, with a deadline, until the parked events of name
// satisfy cond, and returns them.
func waitParked[Tx any](t *testing.T, s subscription.Store[Tx], what string, cond func([]subscription.Parked) bool) []subscription.Parked {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := subscription.ListParked(t.Context(), s, "replay")
		if err != nil {
			t.Fatal(err)
		}
		if cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s: parked %+v", what, ps)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
