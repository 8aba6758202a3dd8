package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

var _ subscription.Store[*sql.Tx] = (*sqlite.Store)(nil)

// backend is the subscription backend of the SQLite store.
type backend = subscription.Backend[*sql.Tx]

// ignoreTimes compares partitions without their times, which the tests
// check on their own.
var ignoreTimes = cmpopts.IgnoreFields(subscription.Partition{}, "LeaseUntil", "Updated")

// forEachKind runs f on a new store of each kind.
func forEachKind(t *testing.T, f func(t *testing.T, s *sqlite.Store)) {
	t.Helper()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k.open(t))
		})
	}
}

func register(t *testing.T, b backend, name string, n int, start uint64) {
	t.Helper()
	got, err := b.Register(testCtx(t), name, n, start)
	if err != nil {
		t.Fatalf("Register(%q, %d): %v", name, n, err)
	}
	if got != n {
		t.Fatalf("Register(%q, %d) = %d, want %d", name, n, got, n)
	}
}

func partitions(t *testing.T, b backend, name string) []subscription.Partition {
	t.Helper()
	ps, err := b.Partitions(testCtx(t), name)
	if err != nil {
		t.Fatalf("Partitions(%q): %v", name, err)
	}
	return ps
}

func acquire(t *testing.T, b backend, name, member string, want []int, ttl time.Duration) []subscription.Lease {
	t.Helper()
	ls, err := b.Acquire(testCtx(t), name, member, want, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q, %v): %v", name, member, want, err)
	}
	return ls
}

// createTable creates table rows (id) through a Commit without
// checkpoints, the way a read model's handler writes.
func createTable(t *testing.T, b backend, name string) {
	t.Helper()
	err := b.Commit(testCtx(t), name, "setup", nil, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE rows (id TEXT PRIMARY KEY)")
		return err
	})
	if err != nil {
		t.Fatalf("creating table rows: %v", err)
	}
}

// insert returns a Commit function that inserts id into rows.
func insert(id string) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO rows (id) VALUES (?)", id)
		return err
	}
}

// rows returns the ids in table rows, read in a transaction of the
// backend (an in-memory store has no other way in).
func rows(t *testing.T, b backend, name string) []string {
	t.Helper()
	var ids []string
	err := b.Commit(testCtx(t), name, "reader", nil, func(ctx context.Context, tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, "SELECT id FROM rows ORDER BY id")
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rs.Err()
	})
	if err != nil {
		t.Fatalf("reading rows: %v", err)
	}
	return ids
}

// lease is a Lease, or a checkpoint.
func lease(partition int, epoch, position uint64) subscription.Lease {
	return subscription.Lease{Partition: partition, Epoch: epoch, Position: position}
}

func TestSubscriptionRegister(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		before := time.Now().Add(-time.Millisecond)
		register(t, b, "orders", 3, 7)
		register(t, b, "audit", 1, 0)
		// An existing subscription keeps its partitions and positions.
		if n, err := b.Register(ctx, "orders", 5, 100); err != nil || n != 3 {
			t.Fatalf("Register(orders, 5) again = %d, %v; want 3, nil", n, err)
		}
		want := []subscription.Partition{
			{Subscription: "audit", Partition: 0},
			{Subscription: "orders", Partition: 0, Position: 7},
			{Subscription: "orders", Partition: 1, Position: 7},
			{Subscription: "orders", Partition: 2, Position: 7},
		}
		got := partitions(t, b, "")
		if diff := cmp.Diff(want, got, ignoreTimes); diff != "" {
			t.Errorf("Partitions(\"\") (-want +got):\n%s", diff)
		}
		for _, p := range got {
			if !p.LeaseUntil.IsZero() || p.Updated.Before(before) || p.Updated.After(time.Now()) {
				t.Errorf("partition %s/%d: LeaseUntil %v, Updated %v; want zero and about now", p.Subscription, p.Partition, p.LeaseUntil, p.Updated)
			}
		}
		if diff := cmp.Diff(want[1:], partitions(t, b, "orders"), ignoreTimes); diff != "" {
			t.Errorf("Partitions(orders) (-want +got):\n%s", diff)
		}
		if got := partitions(t, b, "unknown"); len(got) != 0 {
			t.Errorf("Partitions(unknown) = %v, want none", got)
		}
	})
}

func TestSubscriptionHeartbeat(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		if _, err := b.Heartbeat(ctx, "unknown", "m", time.Minute); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Heartbeat(unknown) error = %v, want ErrNotFound", err)
		}
		register(t, b, "sub", 2, 0)
		if _, err := b.Heartbeat(ctx, "sub", "short", time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := b.Heartbeat(ctx, "sub", "b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b", "short"}, got); diff != "" {
			t.Errorf("Heartbeat(b) (-want +got):\n%s", diff)
		}
		got, err = b.Heartbeat(ctx, "sub", "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a", "b", "short"}, got); diff != "" {
			t.Errorf("Heartbeat(a) (-want +got):\n%s", diff)
		}
		// "short" is forgotten once its time has passed.
		if _, err := b.Heartbeat(ctx, "sub", "short", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "short's heartbeat to expire", func() bool {
			got, err = b.Heartbeat(ctx, "sub", "a", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return len(got) == 2
		})
		if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
			t.Errorf("Heartbeat after expiry (-want +got):\n%s", diff)
		}
		// A member that beats again after its time had passed is back.
		got, err = b.Heartbeat(ctx, "sub", "short", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a", "b", "short"}, got); diff != "" {
			t.Errorf("Heartbeat(short) again (-want +got):\n%s", diff)
		}
	})
}

func TestSubscriptionAcquire(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		if _, err := b.Acquire(ctx, "unknown", "m", []int{0}, time.Minute); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Acquire(unknown) error = %v, want ErrNotFound", err)
		}
		register(t, b, "sub", 4, 5)

		before := time.Now()
		got := acquire(t, b, "sub", "m1", []int{0, 1, 2}, time.Minute)
		want := []subscription.Lease{lease(0, 1, 5), lease(1, 1, 5), lease(2, 1, 5)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("m1 takes 0-2 (-want +got):\n%s", diff)
		}
		for _, p := range partitions(t, b, "sub")[:3] {
			if p.Owner != "m1" || p.LeaseUntil.Before(before.Add(time.Minute-time.Second)) || p.LeaseUntil.After(time.Now().Add(time.Minute)) {
				t.Errorf("partition %d: owner %q until %v; want m1 for a minute", p.Partition, p.Owner, p.LeaseUntil)
			}
		}

		// Held partitions are not taken; a free one is.
		got = acquire(t, b, "sub", "m2", []int{1, 2, 3}, time.Minute)
		if diff := cmp.Diff([]subscription.Lease{lease(3, 1, 5)}, got); diff != "" {
			t.Errorf("m2 wants 1-3 (-want +got):\n%s", diff)
		}

		// m1 keeps 0 (extended, epoch unchanged) and releases 1 and 2.
		got = acquire(t, b, "sub", "m1", []int{0}, 2*time.Minute)
		if diff := cmp.Diff([]subscription.Lease{lease(0, 1, 5)}, got); diff != "" {
			t.Errorf("m1 keeps 0 (-want +got):\n%s", diff)
		}
		ps := partitions(t, b, "sub")
		wantPs := []subscription.Partition{
			{Subscription: "sub", Partition: 0, Position: 5, Owner: "m1", Epoch: 1},
			{Subscription: "sub", Partition: 1, Position: 5, Epoch: 1},
			{Subscription: "sub", Partition: 2, Position: 5, Epoch: 1},
			{Subscription: "sub", Partition: 3, Position: 5, Owner: "m2", Epoch: 1},
		}
		if diff := cmp.Diff(wantPs, ps, ignoreTimes); diff != "" {
			t.Errorf("partitions after release (-want +got):\n%s", diff)
		}
		if ps[0].LeaseUntil.Before(before.Add(2*time.Minute - time.Second)) {
			t.Errorf("partition 0's lease ends at %v, not extended by 2 minutes", ps[0].LeaseUntil)
		}
		if !ps[1].LeaseUntil.IsZero() {
			t.Errorf("released partition 1 has LeaseUntil %v, want zero", ps[1].LeaseUntil)
		}

		// Released partitions change hands: their epochs grow.
		got = acquire(t, b, "sub", "m2", []int{1, 2, 3}, time.Minute)
		if diff := cmp.Diff([]subscription.Lease{lease(1, 2, 5), lease(2, 2, 5), lease(3, 1, 5)}, got); diff != "" {
			t.Errorf("m2 takes 1-3 (-want +got):\n%s", diff)
		}
		// Wanting nothing releases everything.
		if got := acquire(t, b, "sub", "m2", nil, time.Minute); len(got) != 0 {
			t.Errorf("Acquire(nil) = %v, want none", got)
		}
		for _, p := range partitions(t, b, "sub")[1:] {
			if p.Owner != "" {
				t.Errorf("partition %d owned by %q after Acquire(nil)", p.Partition, p.Owner)
			}
		}
	})
}

// TestSubscriptionLeaseTakeOver: a partition whose lease has ended is
// taken by another member, and its former owner is fenced off: its Commit
// fails with ErrLeaseLost and its handler's writes are rolled back.
func TestSubscriptionLeaseTakeOver(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		testTakeOver(t, s.Subscriptions(), s.Subscriptions())
	})
}

// TestSubscriptionTwoStores: two stores on one file, as two processes,
// share members and leases.
func TestSubscriptionTwoStores(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s1, s2 := openFile(t, path), openFile(t, path)
	b1, b2 := s1.Subscriptions(), s2.Subscriptions()
	ctx := testCtx(t)
	register(t, b1, "sub", 2, 0)
	if n, err := b2.Register(ctx, "sub", 3, 0); err != nil || n != 2 {
		t.Fatalf("Register on the other store = %d, %v; want 2, nil", n, err)
	}
	if _, err := b1.Heartbeat(ctx, "sub", "p1", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b2.Heartbeat(ctx, "sub", "p2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p1", "p2"}, got); diff != "" {
		t.Errorf("members seen by the other store (-want +got):\n%s", diff)
	}
	testTakeOver(t, b1, b2)
}

// testTakeOver has m1 (through b1) hold a short lease that m2 (through b2)
// takes once it ends.
func testTakeOver(t *testing.T, b1, b2 backend) {
	t.Helper()
	ctx := testCtx(t)
	register(t, b1, "take", 1, 0)
	createTable(t, b1, "take")
	l1 := acquire(t, b1, "take", "m1", []int{0}, time.Minute)
	if len(l1) != 1 {
		t.Fatalf("m1 got %v, want partition 0", l1)
	}
	if got := acquire(t, b2, "take", "m2", []int{0}, time.Minute); len(got) != 0 {
		t.Fatalf("m2 took %v while m1's lease runs", got)
	}
	// m1's lease, renewed, now ends 50ms from now.
	if got := acquire(t, b1, "take", "m1", []int{0}, 50*time.Millisecond); len(got) != 1 || got[0] != l1[0] {
		t.Fatalf("m1 renews: %v, want %v", got, l1)
	}
	// Once its lease has ended but no one took the partition, m1 may still
	// commit.
	waitFor(ctx, t, "m1's lease to end", func() bool {
		return time.Now().After(partitions(t, b2, "take")[0].LeaseUntil)
	})
	cp := []subscription.Lease{{Partition: 0, Epoch: l1[0].Epoch, Position: 3}}
	if err := b1.Commit(ctx, "take", "m1", cp, insert("m1-late")); err != nil {
		t.Fatalf("m1's commit after its lease ended, before a take-over: %v", err)
	}
	l2 := acquire(t, b2, "take", "m2", []int{0}, time.Minute)
	if diff := cmp.Diff([]subscription.Lease{{Partition: 0, Epoch: l1[0].Epoch + 1, Position: 3}}, l2); diff != "" {
		t.Fatalf("m2 takes over (-want +got):\n%s", diff)
	}
	// m1 is fenced off.
	cp[0].Position = 10
	err := b1.Commit(ctx, "take", "m1", cp, insert("m1-fenced"))
	if !errors.Is(err, subscription.ErrLeaseLost) {
		t.Fatalf("m1's commit after the take-over: error %v, want ErrLeaseLost", err)
	}
	if diff := cmp.Diff([]string{"m1-late"}, rows(t, b2, "take")); diff != "" {
		t.Errorf("rows after the fenced commit (-want +got):\n%s", diff)
	}
	// m1 no longer holds it; Acquire says so.
	if got := acquire(t, b1, "take", "m1", []int{0}, time.Minute); len(got) != 0 {
		t.Errorf("m1 still holds %v", got)
	}
	if err := b2.Commit(ctx, "take", "m2", []subscription.Lease{{Partition: 0, Epoch: l2[0].Epoch, Position: 4}}, insert("m2")); err != nil {
		t.Fatal(err)
	}
	p := partitions(t, b1, "take")[0]
	if p.Position != 4 || p.Owner != "m2" {
		t.Errorf("partition 0 at %d owned by %q, want 4 and m2", p.Position, p.Owner)
	}
}

func TestSubscriptionCommit(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		register(t, b, "sub", 2, 10)
		createTable(t, b, "sub")
		ls := acquire(t, b, "sub", "m", []int{0, 1}, time.Minute)
		updated := partitions(t, b, "sub")[0].Updated

		cps := []subscription.Lease{lease(0, ls[0].Epoch, 20), lease(1, ls[1].Epoch, 15)}
		if err := b.Commit(ctx, "sub", "m", cps, insert("a")); err != nil {
			t.Fatal(err)
		}
		ps := partitions(t, b, "sub")
		if ps[0].Position != 20 || ps[1].Position != 15 {
			t.Errorf("positions %d, %d; want 20, 15", ps[0].Position, ps[1].Position)
		}
		if ps[0].Updated.Before(updated) {
			t.Errorf("Updated %v went back from %v", ps[0].Updated, updated)
		}
		updated = ps[0].Updated

		// A lower position leaves the stored one, and its time.
		cps = []subscription.Lease{lease(0, ls[0].Epoch, 12)}
		if err := b.Commit(ctx, "sub", "m", cps, nil); err != nil {
			t.Fatal(err)
		}
		ps = partitions(t, b, "sub")
		if ps[0].Position != 20 || !ps[0].Updated.Equal(updated) {
			t.Errorf("after a lower checkpoint: position %d updated %v, want 20 and %v", ps[0].Position, ps[0].Updated, updated)
		}

		// fn's error is returned as it is and rolls the checkpoint back.
		errHandler := errors.New("handler failed")
		cps = []subscription.Lease{lease(0, ls[0].Epoch, 30)}
		err := b.Commit(ctx, "sub", "m", cps, func(ctx context.Context, tx *sql.Tx) error {
			if err := insert("b")(ctx, tx); err != nil {
				return err
			}
			return errHandler
		})
		if err != errHandler { //nolint:errorlint // the contract: fn's error itself, not wrapped
			t.Fatalf("Commit error = %v, want fn's error as it is", err)
		}
		if p := partitions(t, b, "sub")[0]; p.Position != 20 {
			t.Errorf("position %d after fn failed, want 20", p.Position)
		}

		// One checkpoint under a wrong epoch fails them all.
		cps = []subscription.Lease{lease(0, ls[0].Epoch, 40), lease(1, ls[1].Epoch+1, 40)}
		if err := b.Commit(ctx, "sub", "m", cps, insert("c")); !errors.Is(err, subscription.ErrLeaseLost) {
			t.Fatalf("Commit with a wrong epoch: error %v, want ErrLeaseLost", err)
		}
		// Another member's checkpoint too.
		cps = []subscription.Lease{lease(0, ls[0].Epoch, 40)}
		if err := b.Commit(ctx, "sub", "other", cps, insert("d")); !errors.Is(err, subscription.ErrLeaseLost) {
			t.Fatalf("Commit by another member: error %v, want ErrLeaseLost", err)
		}
		ps = partitions(t, b, "sub")
		if ps[0].Position != 20 || ps[1].Position != 15 {
			t.Errorf("positions %d, %d after failed commits; want 20, 15", ps[0].Position, ps[1].Position)
		}
		if diff := cmp.Diff([]string{"a"}, rows(t, b, "sub")); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}

		// A commit without checkpoints on an unknown subscription.
		if err := b.Commit(ctx, "unknown", "m", nil, nil); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Commit(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

func TestSubscriptionLeave(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		if err := b.Leave(ctx, "unknown", "m"); err != nil {
			t.Fatalf("Leave(unknown) = %v, want nil", err)
		}
		register(t, b, "sub", 2, 0)
		for _, m := range []string{"m1", "m2"} {
			if _, err := b.Heartbeat(ctx, "sub", m, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		ls := acquire(t, b, "sub", "m1", []int{0, 1}, time.Minute)
		if err := b.Leave(ctx, "sub", "m1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Leave(ctx, "sub", "m1"); err != nil {
			t.Fatalf("Leave again = %v, want nil", err)
		}
		want := []subscription.Partition{
			{Subscription: "sub", Partition: 0, Epoch: 1},
			{Subscription: "sub", Partition: 1, Epoch: 1},
		}
		if diff := cmp.Diff(want, partitions(t, b, "sub"), ignoreTimes); diff != "" {
			t.Errorf("partitions after Leave (-want +got):\n%s", diff)
		}
		got, err := b.Heartbeat(ctx, "sub", "m2", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"m2"}, got); diff != "" {
			t.Errorf("members after Leave (-want +got):\n%s", diff)
		}
		if err := b.Commit(ctx, "sub", "m1", ls, nil); !errors.Is(err, subscription.ErrLeaseLost) {
			t.Errorf("Commit after Leave: error %v, want ErrLeaseLost", err)
		}
	})
}

func TestSubscriptionReset(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		if err := b.Reset(ctx, "unknown", 0); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Reset(unknown) error = %v, want ErrNotFound", err)
		}
		register(t, b, "sub", 2, 0)
		ls := acquire(t, b, "sub", "m", []int{0}, time.Minute)
		if err := b.Commit(ctx, "sub", "m", []subscription.Lease{lease(0, ls[0].Epoch, 50)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Reset(ctx, "sub", 7); err != nil {
			t.Fatal(err)
		}
		want := []subscription.Partition{
			{Subscription: "sub", Partition: 0, Position: 7, Epoch: 2},
			{Subscription: "sub", Partition: 1, Position: 7, Epoch: 1},
		}
		ps := partitions(t, b, "sub")
		if diff := cmp.Diff(want, ps, ignoreTimes); diff != "" {
			t.Errorf("partitions after Reset (-want +got):\n%s", diff)
		}
		if !ps[0].LeaseUntil.IsZero() {
			t.Errorf("LeaseUntil %v after Reset, want zero", ps[0].LeaseUntil)
		}
		if err := b.Commit(ctx, "sub", "m", []subscription.Lease{lease(0, ls[0].Epoch, 60)}, nil); !errors.Is(err, subscription.ErrLeaseLost) {
			t.Errorf("Commit after Reset: error %v, want ErrLeaseLost", err)
		}
		got := acquire(t, b, "sub", "m", []int{0, 1}, time.Minute)
		if diff := cmp.Diff([]subscription.Lease{lease(0, 3, 7), lease(1, 2, 7)}, got); diff != "" {
			t.Errorf("Acquire after Reset (-want +got):\n%s", diff)
		}
	})
}

func TestSubscriptionDelete(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		if err := b.Delete(ctx, "unknown"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Delete(unknown) error = %v, want ErrNotFound", err)
		}
		register(t, b, "sub", 2, 0)
		register(t, b, "kept", 1, 0)
		ls := acquire(t, b, "sub", "m", []int{0, 1}, time.Minute)
		if _, err := b.Heartbeat(ctx, "sub", "m", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := b.Park(ctx, "sub", subscription.Parked{Position: 3, StreamID: "s", Type: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "sub"); err != nil {
			t.Fatal(err)
		}
		want := []subscription.Partition{{Subscription: "kept", Partition: 0}}
		if diff := cmp.Diff(want, partitions(t, b, ""), ignoreTimes); diff != "" {
			t.Errorf("partitions after Delete (-want +got):\n%s", diff)
		}
		if _, err := b.Parked(ctx, "sub"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Parked after Delete: error %v, want ErrNotFound", err)
		}
		err := b.Commit(ctx, "sub", "m", ls, nil)
		if !errors.Is(err, subscription.ErrLeaseLost) || !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Commit after Delete: error %v, want ErrLeaseLost and ErrNotFound", err)
		}
		if err := b.Delete(ctx, "sub"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Delete again: error %v, want ErrNotFound", err)
		}
		// A new subscription of that name starts afresh: no members, no
		// parked events.
		register(t, b, "sub", 1, 0)
		got, err := b.Heartbeat(ctx, "sub", "n", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"n"}, got); diff != "" {
			t.Errorf("members of the new subscription (-want +got):\n%s", diff)
		}
		if ps, err := b.Parked(ctx, "sub"); err != nil || len(ps) != 0 {
			t.Errorf("Parked of the new subscription = %v, %v; want none", ps, err)
		}
	})
}

func TestSubscriptionParked(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		p9 := subscription.Parked{Position: 9, StreamID: "order-2", Version: 4, Type: "Shipped", EventID: "e9",
			Error: "boom", Attempts: 3, Time: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)}
		if err := b.Park(ctx, "unknown", p9); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Park(unknown) error = %v, want ErrNotFound", err)
		}
		if _, err := b.Parked(ctx, "unknown"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("Parked(unknown) error = %v, want ErrNotFound", err)
		}
		register(t, b, "sub", 1, 0)
		createTable(t, b, "sub")
		if got, err := b.Parked(ctx, "sub"); err != nil || len(got) != 0 {
			t.Fatalf("Parked of a new subscription = %v, %v; want none", got, err)
		}
		p4 := subscription.Parked{Position: 4, StreamID: "order-1", Version: 1, Type: "Placed", Error: "first", Attempts: 1}
		before := time.Now().Add(-time.Millisecond)
		for _, p := range []subscription.Parked{p9, p4} {
			if err := b.Park(ctx, "sub", p); err != nil {
				t.Fatal(err)
			}
		}
		// Parking at the same position replaces the entry.
		p4.Error, p4.Attempts = "second", 2
		if err := b.Park(ctx, "sub", p4); err != nil {
			t.Fatal(err)
		}
		got, err := b.Parked(ctx, "sub")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 && (got[0].Time.Before(before) || got[0].Time.After(time.Now())) {
			t.Errorf("an event parked without a time got %v, want now", got[0].Time)
		}
		if diff := cmp.Diff([]subscription.Parked{p4, p9}, got, cmpopts.IgnoreFields(subscription.Parked{}, "Time")); diff != "" {
			t.Errorf("Parked (-want +got):\n%s", diff)
		}
		if len(got) == 2 && !got[1].Time.Equal(p9.Time) {
			t.Errorf("parked time %v, want %v", got[1].Time, p9.Time)
		}

		// fn's error leaves the event parked and rolls back its writes.
		errRetry := errors.New("retry failed")
		err = b.Unpark(ctx, "sub", 4, func(ctx context.Context, tx *sql.Tx) error {
			if err := insert("retry-1")(ctx, tx); err != nil {
				return err
			}
			return errRetry
		})
		if err != errRetry { //nolint:errorlint // the contract: fn's error itself, not wrapped
			t.Fatalf("Unpark error = %v, want fn's error as it is", err)
		}
		if got, _ := b.Parked(ctx, "sub"); len(got) != 2 {
			t.Errorf("%d parked after a failed Unpark, want 2", len(got))
		}
		if err := b.Unpark(ctx, "sub", 4, insert("retry-2")); err != nil {
			t.Fatal(err)
		}
		if err := b.Unpark(ctx, "sub", 9, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Parked(ctx, "sub"); err != nil || len(got) != 0 {
			t.Errorf("Parked after Unpark = %v, %v; want none", got, err)
		}
		if diff := cmp.Diff([]string{"retry-2"}, rows(t, b, "sub")); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		called := false
		err = b.Unpark(ctx, "sub", 4, func(context.Context, *sql.Tx) error { called = true; return nil })
		if !errors.Is(err, eventstore.ErrNotFound) || called {
			t.Errorf("Unpark of nothing: error %v, fn called %v; want ErrNotFound, not called", err, called)
		}
		if err := b.Unpark(ctx, "unknown", 4, nil); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Unpark(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

// TestSubscriptionCommitPanics: a panicking fn is rolled back, Commit
// panics with its value in the caller's goroutine, and the writer lives on.
func TestSubscriptionCommitPanics(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		register(t, b, "sub", 1, 0)
		createTable(t, b, "sub")
		ls := acquire(t, b, "sub", "m", []int{0}, time.Minute)
		got := func() (p any) {
			defer func() { p = recover() }()
			_ = b.Commit(ctx, "sub", "m", []subscription.Lease{lease(0, ls[0].Epoch, 5)}, func(ctx context.Context, tx *sql.Tx) error {
				if err := insert("x")(ctx, tx); err != nil {
					return err
				}
				panic("handler bug")
			})
			return nil
		}()
		if got != "handler bug" {
			t.Fatalf("Commit panicked with %v, want fn's value", got)
		}
		if p := partitions(t, b, "sub")[0]; p.Position != 0 {
			t.Errorf("position %d after the panic, want 0", p.Position)
		}
		if r := rows(t, b, "sub"); len(r) != 0 {
			t.Errorf("rows %v after the panic, want none", r)
		}
		if _, err := s.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
			t.Errorf("Append after the panic: %v", err)
		}
	})
}

// TestSubscriptionFailuresSpareAppends: transactions that fail run on
// their own and never roll back appends committed alongside.
func TestSubscriptionFailuresSpareAppends(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		ctx := testCtx(t)
		register(t, b, "sub", 1, 0)
		errFail := errors.New("fail")
		const n = 50
		var g errgroup.Group
		for i := range n {
			g.Go(func() error {
				_, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstore.Event{Type: "t"})
				return err
			})
			g.Go(func() error {
				err := b.Commit(ctx, "sub", "m", nil, func(context.Context, *sql.Tx) error { return errFail })
				if err != errFail { //nolint:errorlint // the contract: fn's error itself, not wrapped
					return fmt.Errorf("Commit: %w, want errFail", err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, eventstore.AllStreams)
		if err != nil {
			t.Fatal(err)
		}
		if info.Count != n {
			t.Errorf("%d events stored, want %d", info.Count, n)
		}
	})
}

func TestSubscriptionContextAndClose(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *sqlite.Store) {
		b := s.Subscriptions()
		register(t, b, "sub", 1, 0)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := b.Register(ctx, "other", 1, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("Register with an ended context: error %v, want context.Canceled", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ctx = testCtx(t)
		calls := map[string]func() error{
			"Register":  func() error { _, err := b.Register(ctx, "sub", 1, 0); return err },
			"Heartbeat": func() error { _, err := b.Heartbeat(ctx, "sub", "m", time.Minute); return err },
			"Acquire":   func() error { _, err := b.Acquire(ctx, "sub", "m", []int{0}, time.Minute); return err },
			"Leave":     func() error { return b.Leave(ctx, "sub", "m") },
			"Commit":    func() error { return b.Commit(ctx, "sub", "m", nil, nil) },
			"Park":      func() error { return b.Park(ctx, "sub", subscription.Parked{Position: 1}) },
			"Parked":    func() error { _, err := b.Parked(ctx, "sub"); return err },
			"Unpark":    func() error { return b.Unpark(ctx, "sub", 1, nil) },
			"Partition": func() error { _, err := b.Partitions(ctx, "sub"); return err },
			"Reset":     func() error { return b.Reset(ctx, "sub", 0) },
			"Delete":    func() error { return b.Delete(ctx, "sub") },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("%s after Close: error %v, want ErrClosed", name, err)
			}
		}
	})
}

// schemaV1 is the schema of version 1, as the package created it before
// subscriptions.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	event_id  TEXT,
	type      TEXT    NOT NULL,
	data      BLOB,
	metadata  TEXT,
	time      INTEGER NOT NULL,
	UNIQUE (stream_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (
	stream_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL,
	last_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	position  INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	last_time INTEGER NOT NULL
);
INSERT OR IGNORE INTO head (id, position, count, last_time) VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS snapshots (
	stream_id TEXT    NOT NULL,
	name      TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	schema    TEXT    NOT NULL,
	data      BLOB,
	time      INTEGER NOT NULL,
	PRIMARY KEY (stream_id, name)
) WITHOUT ROWID;
`

// TestMigrateFromVersion1: a database of schema version 1, with an event
// in it, opens at version 2 with its events and can keep subscriptions.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		schemaV1,
		"INSERT INTO events (stream_id, version, type, time) VALUES ('old', 1, 'Old', 1000)",
		"INSERT INTO streams (stream_id, version, last_time) VALUES ('old', 1, 1000)",
		"UPDATE head SET position = 1, count = 1, last_time = 1000",
		"PRAGMA user_version = 1",
	} {
		if _, err := db.Exec(q); err != nil {
			_ = db.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openFile(t, path)
	ctx := testCtx(t)
	res, err := s.Append(ctx, "old", eventstore.Exact(1), eventstore.Event{Type: "New"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position != 2 || res.Version != 2 {
		t.Errorf("Append to the old stream = position %d version %d, want 2, 2", res.Position, res.Version)
	}
	b := s.Subscriptions()
	register(t, b, "sub", 2, 1)
	if got := acquire(t, b, "sub", "m", []int{0, 1}, time.Minute); len(got) != 2 {
		t.Errorf("Acquire after migration = %v, want 2 leases", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if want := sqlite.SchemaVersionForTest; v != want {
		t.Errorf("user_version = %d after Open, want %d", v, want)
	}
	// Opening again finds the schema up to date.
	s2 := openFile(t, path)
	if got := partitions(t, s2.Subscriptions(), "sub"); len(got) != 2 {
		t.Errorf("partitions after reopening = %v, want 2", got)
	}
}
