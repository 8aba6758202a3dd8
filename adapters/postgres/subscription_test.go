package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// shortTTL is a lease or member life a test waits past (by polling the
// database's clock, never by a fixed sleep).
const shortTTL = 100 * time.Millisecond

// longTTL is a lease that does not end during a test.
const longTTL = time.Hour

// subStore opens a store on a fresh schema with a read-model table rm
// (id int primary key) that transactional handlers write to.
func subStore(t *testing.T) (*Store, subscription.Backend[pgx.Tx]) {
	t.Helper()
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	if _, err := s.d.pool.Exec(t.Context(), "CREATE TABLE "+s.d.schema+".rm (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return s, s.Subscriptions()
}

// register creates subscription name with n partitions at start.
func register(t *testing.T, b subscription.Backend[pgx.Tx], name string, n int, start uint64) {
	t.Helper()
	got, err := b.Register(t.Context(), name, n, start)
	if err != nil || got != n {
		t.Fatalf("Register(%q, %d): %d, %v; want %d", name, n, got, err, n)
	}
}

// acquire calls Acquire and fails the test on an error.
func acquire(t *testing.T, b subscription.Backend[pgx.Tx], name, member string, want []int, ttl time.Duration) []subscription.Lease {
	t.Helper()
	got, err := b.Acquire(t.Context(), name, member, want, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q, %v): %v", name, member, want, err)
	}
	return got
}

// lease makes a Lease (or a checkpoint) without naming its fields.
func lease(partition int, epoch, position uint64) subscription.Lease {
	return subscription.Lease{Partition: partition, Epoch: epoch, Position: position}
}

// partitions returns the stored partitions of name.
func partitions(t *testing.T, b subscription.Backend[pgx.Tx], name string) []subscription.Partition {
	t.Helper()
	got, err := b.Partitions(t.Context(), name)
	if err != nil {
		t.Fatalf("Partitions(%q): %v", name, err)
	}
	return got
}

// insertRow is a transactional handler that writes row id to s's rm.
func insertRow(s *Store, id int) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+s.d.schema+".rm (id) VALUES ($1)", id)
		return err
	}
}

// rows returns the ids in rm, in order.
func rows(t *testing.T, s *Store) []int {
	t.Helper()
	r, err := s.d.pool.Query(t.Context(), "SELECT id FROM "+s.d.schema+".rm ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(r, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitLeaseEnded waits until the database's clock is past every lease of
// name.
func waitLeaseEnded(t *testing.T, s *Store, name string) {
	t.Helper()
	waitFor(t, "leases of "+name+" end", func() (bool, error) {
		var live bool
		err := s.d.pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM "+s.d.schema+
			".subscriptions WHERE name = $1 AND lease_until > clock_timestamp())", name).Scan(&live)
		return !live, err
	})
}

// positionsOf returns the partitions' positions.
func positionsOf(ps []subscription.Partition) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Position
	}
	return out
}

// ownership is the part of a partition that Acquire, Leave and Reset
// change, with the lease reduced to whether there is one.
type ownership struct {
	Partition int
	Owner     string
	Leased    bool
	Epoch     uint64
}

func ownershipOf(ps []subscription.Partition) []ownership {
	out := make([]ownership, len(ps))
	for i, p := range ps {
		out[i] = ownership{p.Partition, p.Owner, !p.LeaseUntil.IsZero(), p.Epoch}
	}
	return out
}

func TestSubscriptionRegister(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	n, err := b.Register(ctx, "orders", 4, 7)
	if err != nil || n != 4 {
		t.Fatalf("Register of a new subscription: %d, %v; want 4, nil", n, err)
	}
	n, err = b.Register(ctx, "orders", 8, 100)
	if err != nil || n != 4 {
		t.Fatalf("Register of an existing subscription with 8 partitions: %d, %v; want the stored 4, nil", n, err)
	}
	ps := partitions(t, b, "orders")
	if diff := cmp.Diff([]uint64{7, 7, 7, 7}, positionsOf(ps)); diff != "" {
		t.Errorf("positions after Register (-want +got):\n%s", diff)
	}
	want := []ownership{{0, "", false, 0}, {1, "", false, 0}, {2, "", false, 0}, {3, "", false, 0}}
	if diff := cmp.Diff(want, ownershipOf(ps)); diff != "" {
		t.Errorf("partitions after Register (-want +got):\n%s", diff)
	}
	for _, p := range ps {
		if p.Subscription != "orders" || p.Updated.IsZero() || p.Updated.Location() != time.UTC {
			t.Errorf("partition %+v: want subscription orders and a UTC Updated time", p)
		}
	}
}

// TestSubscriptionRegisterConcurrently: registrations racing with
// different partition counts agree on one of them, and that many
// partitions are stored.
func TestSubscriptionRegisterConcurrently(t *testing.T) {
	for round := range 5 {
		_, b := subStore(t)
		got := make([]int, 6)
		var g errgroup.Group
		for i := range got {
			g.Go(func() (err error) {
				got[i], err = b.Register(t.Context(), "race", i+1, 0)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("round %d: Register: %v", round, err)
		}
		stored := len(partitions(t, b, "race"))
		for i, n := range got {
			if n != stored {
				t.Errorf("round %d: Register %d returned %d partitions, %d are stored", round, i, n, stored)
			}
		}
	}
}

func TestSubscriptionHeartbeat(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	if _, err := b.Heartbeat(ctx, "nope", "a", longTTL); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("Heartbeat of an unknown subscription: %v, want ErrNotFound", err)
	}
	register(t, b, "sub", 2, 0)
	beat := func(member string, ttl time.Duration) []string {
		t.Helper()
		live, err := b.Heartbeat(ctx, "sub", member, ttl)
		if err != nil {
			t.Fatalf("Heartbeat(%q): %v", member, err)
		}
		return live
	}
	if diff := cmp.Diff([]string{"m2"}, beat("m2", longTTL)); diff != "" {
		t.Errorf("first heartbeat (-want +got):\n%s", diff)
	}
	beat("short", shortTTL)
	beat("B", longTTL)
	// Byte order, whatever the database's collation ("B" < "a").
	if diff := cmp.Diff([]string{"B", "a", "m2", "short"}, beat("a", longTTL)); diff != "" {
		t.Errorf("live members (-want +got):\n%s", diff)
	}
	// The short-lived member is forgotten once the database's clock
	// passes its time: the next heartbeat after that deletes its row.
	waitFor(t, "member short expires", func() (bool, error) {
		var gone bool
		err := s.d.pool.QueryRow(ctx, "SELECT expires <= clock_timestamp() FROM "+s.d.schema+
			".subscription_members WHERE name = 'sub' AND member = 'short'").Scan(&gone)
		return gone, err
	})
	if diff := cmp.Diff([]string{"B", "a", "m2"}, beat("m2", longTTL)); diff != "" {
		t.Errorf("live members after one expired (-want +got):\n%s", diff)
	}
	var n int
	if err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM "+s.d.schema+".subscription_members WHERE member = 'short'").Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the expired member: %d, %v; want 0 (forgotten)", n, err)
	}
	// An expired member that beats again is alive again.
	if diff := cmp.Diff([]string{"B", "a", "m2", "short"}, beat("short", longTTL)); diff != "" {
		t.Errorf("live members after the expired one came back (-want +got):\n%s", diff)
	}
}

func TestSubscriptionAcquire(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	if _, err := b.Acquire(ctx, "nope", "a", []int{0}, longTTL); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("Acquire on an unknown subscription: %v, want ErrNotFound", err)
	}
	register(t, b, "sub", 4, 5)
	got := acquire(t, b, "sub", "a", []int{0, 1}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(0, 1, 5), lease(1, 1, 5)}, got); diff != "" {
		t.Errorf("a takes 0 and 1 (-want +got):\n%s", diff)
	}
	got = acquire(t, b, "sub", "b", []int{1, 2, 3}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(2, 1, 5), lease(3, 1, 5)}, got); diff != "" {
		t.Errorf("b wants 1 to 3, a holds 1 (-want +got):\n%s", diff)
	}
	before := partitions(t, b, "sub")
	// a keeps 0 (extended, same epoch) and releases 1.
	got = acquire(t, b, "sub", "a", []int{0}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(0, 1, 5)}, got); diff != "" {
		t.Errorf("a keeps 0 (-want +got):\n%s", diff)
	}
	after := partitions(t, b, "sub")
	want := []ownership{{0, "a", true, 1}, {1, "", false, 1}, {2, "b", true, 1}, {3, "b", true, 1}}
	if diff := cmp.Diff(want, ownershipOf(after)); diff != "" {
		t.Errorf("after a released 1 (-want +got):\n%s", diff)
	}
	if !after[0].LeaseUntil.After(before[0].LeaseUntil) {
		t.Errorf("a's lease on 0 ends %v after being extended, %v before: not extended", after[0].LeaseUntil, before[0].LeaseUntil)
	}
	// b takes the released partition: a new epoch.
	got = acquire(t, b, "sub", "b", []int{1, 2, 3}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(1, 2, 5), lease(2, 1, 5), lease(3, 1, 5)}, got); diff != "" {
		t.Errorf("b takes the released 1 (-want +got):\n%s", diff)
	}
	// Wanting nothing releases everything.
	if got := acquire(t, b, "sub", "b", nil, longTTL); len(got) != 0 {
		t.Errorf("b wants nothing: holds %v", got)
	}
	want = []ownership{{0, "a", true, 1}, {1, "", false, 2}, {2, "", false, 1}, {3, "", false, 1}}
	if diff := cmp.Diff(want, ownershipOf(partitions(t, b, "sub"))); diff != "" {
		t.Errorf("after b released all (-want +got):\n%s", diff)
	}
	// A partition the subscription does not have is not taken.
	if got := acquire(t, b, "sub", "c", []int{4, 9}, longTTL); len(got) != 0 {
		t.Errorf("c wants partitions the subscription lacks: holds %v", got)
	}
}

// TestSubscriptionLeaseTakeOver: a lease that ended is taken by another
// member under a new epoch, after which the old owner's commits fail.
func TestSubscriptionLeaseTakeOver(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	old := acquire(t, b, "sub", "a", []int{0}, shortTTL)
	if got := acquire(t, b, "sub", "b", []int{0}, longTTL); len(got) != 0 {
		t.Fatalf("b took a's live lease: %v", got)
	}
	waitLeaseEnded(t, s, "sub")
	got := acquire(t, b, "sub", "b", []int{0}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(0, 2, 0)}, got); diff != "" {
		t.Fatalf("b takes the ended lease (-want +got):\n%s", diff)
	}
	err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, old[0].Epoch, 10)}, insertRow(s, 1))
	if !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit by the old owner: %v, want ErrLeaseLost", err)
	}
	if err := b.Commit(ctx, "sub", "b", []subscription.Lease{lease(0, 2, 10)}, insertRow(s, 2)); err != nil {
		t.Errorf("Commit by the new owner: %v", err)
	}
	if diff := cmp.Diff([]int{2}, rows(t, s)); diff != "" {
		t.Errorf("read model (-want +got):\n%s", diff)
	}
	// a, trying again, cannot take b's live lease.
	if got := acquire(t, b, "sub", "a", []int{0}, longTTL); len(got) != 0 {
		t.Errorf("a took b's live lease: %v", got)
	}
}

// TestSubscriptionOwnEndedLease: a member whose lease ended but whom no
// one replaced still owns the partition: its commits succeed and its
// next Acquire keeps the epoch.
func TestSubscriptionOwnEndedLease(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	acquire(t, b, "sub", "a", []int{0}, shortTTL)
	waitLeaseEnded(t, s, "sub")
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, 1, 3)}, nil); err != nil {
		t.Errorf("Commit after the lease ended, not taken: %v", err)
	}
	got := acquire(t, b, "sub", "a", []int{0}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(0, 1, 3)}, got); diff != "" {
		t.Errorf("a acquires its ended lease again (-want +got):\n%s", diff)
	}
}

func TestSubscriptionCommit(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 3, 0)
	leases := acquire(t, b, "sub", "a", []int{0, 1}, longTTL)
	// Unsorted checkpoints, as the contract allows.
	cps := []subscription.Lease{lease(1, leases[1].Epoch, 20), lease(0, leases[0].Epoch, 10)}
	if err := b.Commit(ctx, "sub", "a", cps, insertRow(s, 1)); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	ps := partitions(t, b, "sub")
	if diff := cmp.Diff([]uint64{10, 20, 0}, positionsOf(ps)); diff != "" {
		t.Errorf("positions after Commit (-want +got):\n%s", diff)
	}
	// A lower position leaves the stored one, and its Updated time.
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, leases[0].Epoch, 4)}, nil); err != nil {
		t.Fatalf("Commit of a lower position: %v", err)
	}
	again := partitions(t, b, "sub")
	if again[0].Position != 10 || !again[0].Updated.Equal(ps[0].Updated) {
		t.Errorf("after a lower checkpoint: position %d updated %v, want 10 and %v unchanged", again[0].Position, again[0].Updated, ps[0].Updated)
	}
	// One checkpoint not owned so: nothing is committed.
	cps = []subscription.Lease{lease(0, leases[0].Epoch, 30), lease(2, 1, 30)}
	if err := b.Commit(ctx, "sub", "a", cps, insertRow(s, 2)); !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit including a partition a does not hold: %v, want ErrLeaseLost", err)
	}
	if diff := cmp.Diff([]uint64{10, 20, 0}, positionsOf(partitions(t, b, "sub"))); diff != "" {
		t.Errorf("positions after a refused Commit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1}, rows(t, s)); diff != "" {
		t.Errorf("read model after a refused Commit (-want +got):\n%s", diff)
	}
	// The wrong member, the right epoch.
	if err := b.Commit(ctx, "sub", "b", []subscription.Lease{lease(0, leases[0].Epoch, 40)}, nil); !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit by a member that does not own the partition: %v, want ErrLeaseLost", err)
	}
	// No checkpoint: fn's writes alone.
	if err := b.Commit(ctx, "sub", "a", nil, insertRow(s, 3)); err != nil {
		t.Errorf("Commit without checkpoints: %v", err)
	}
	if err := b.Commit(ctx, "nope", "a", nil, nil); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Commit without checkpoints on an unknown subscription: %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff([]int{1, 3}, rows(t, s)); diff != "" {
		t.Errorf("read model (-want +got):\n%s", diff)
	}
}

// TestSubscriptionCommitFenced: a commit under a stale epoch fails with
// ErrLeaseLost and rolls the handler's writes back with the checkpoint.
func TestSubscriptionCommitFenced(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	stale := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]
	if err := b.Reset(ctx, "sub", 0); err != nil {
		t.Fatal(err)
	}
	cur := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]
	if cur.Epoch <= stale.Epoch {
		t.Fatalf("epoch after Reset and Acquire %d, before %d: did not grow", cur.Epoch, stale.Epoch)
	}
	called := false
	fn := func(ctx context.Context, tx pgx.Tx) error {
		called = true
		return insertRow(s, 1)(ctx, tx)
	}
	err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, stale.Epoch, 9)}, fn)
	if !errors.Is(err, subscription.ErrLeaseLost) {
		t.Fatalf("Commit with a stale epoch: %v, want ErrLeaseLost", err)
	}
	if !called {
		t.Error("Commit did not run fn")
	}
	if got := rows(t, s); len(got) != 0 {
		t.Errorf("read model after a fenced Commit: %v, want nothing (rolled back)", got)
	}
	if got := partitions(t, b, "sub")[0].Position; got != 0 {
		t.Errorf("position after a fenced Commit: %d, want 0", got)
	}
}

// TestSubscriptionCommitFnError: fn's error is returned as it is, and
// neither its writes nor the checkpoint are committed.
func TestSubscriptionCommitFnError(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	l := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]
	boom := errors.New("boom")
	err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l.Epoch, 9)}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insertRow(s, 1)(ctx, tx); err != nil {
			return err
		}
		return boom
	})
	if err != boom { //nolint:errorlint // the contract: fn's error itself, not wrapped
		t.Fatalf("Commit with a failing fn: %v, want fn's error itself", err)
	}
	if got := rows(t, s); len(got) != 0 {
		t.Errorf("read model: %v, want nothing", got)
	}
	if got := partitions(t, b, "sub")[0].Position; got != 0 {
		t.Errorf("position: %d, want 0", got)
	}
	// The lease is intact: the batch can be committed again.
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l.Epoch, 9)}, insertRow(s, 1)); err != nil {
		t.Errorf("Commit after the failed one: %v", err)
	}
}

func TestSubscriptionLeave(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	if err := b.Leave(ctx, "nope", "a"); err != nil {
		t.Errorf("Leave of an unknown subscription: %v", err)
	}
	register(t, b, "sub", 3, 0)
	if err := b.Leave(ctx, "sub", "nobody"); err != nil {
		t.Errorf("Leave of an unknown member: %v", err)
	}
	for _, m := range []string{"a", "b"} {
		if _, err := b.Heartbeat(ctx, "sub", m, longTTL); err != nil {
			t.Fatal(err)
		}
	}
	acquire(t, b, "sub", "a", []int{0, 1}, longTTL)
	acquire(t, b, "sub", "b", []int{2}, longTTL)
	if err := b.Leave(ctx, "sub", "a"); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	want := []ownership{{0, "", false, 1}, {1, "", false, 1}, {2, "b", true, 1}}
	if diff := cmp.Diff(want, ownershipOf(partitions(t, b, "sub"))); diff != "" {
		t.Errorf("after a left (-want +got):\n%s", diff)
	}
	live, err := b.Heartbeat(ctx, "sub", "b", longTTL)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, live); diff != "" {
		t.Errorf("live members after a left (-want +got):\n%s", diff)
	}
}

func TestSubscriptionReset(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	if err := b.Reset(ctx, "nope", 0); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Reset of an unknown subscription: %v, want ErrNotFound", err)
	}
	register(t, b, "sub", 3, 0)
	leases := acquire(t, b, "sub", "a", []int{0, 1}, longTTL)
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, 1, 50), lease(1, 1, 60)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(ctx, "sub", 5); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	ps := partitions(t, b, "sub")
	if diff := cmp.Diff([]uint64{5, 5, 5}, positionsOf(ps)); diff != "" {
		t.Errorf("positions after Reset (-want +got):\n%s", diff)
	}
	want := []ownership{{0, "", false, 2}, {1, "", false, 2}, {2, "", false, 1}}
	if diff := cmp.Diff(want, ownershipOf(ps)); diff != "" {
		t.Errorf("partitions after Reset (-want +got):\n%s", diff)
	}
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, leases[0].Epoch, 70)}, nil); !errors.Is(err, subscription.ErrLeaseLost) {
		t.Errorf("Commit after Reset: %v, want ErrLeaseLost", err)
	}
	got := acquire(t, b, "sub", "a", []int{0, 1, 2}, longTTL)
	if diff := cmp.Diff([]subscription.Lease{lease(0, 3, 5), lease(1, 3, 5), lease(2, 2, 5)}, got); diff != "" {
		t.Errorf("Acquire after Reset (-want +got):\n%s", diff)
	}
}

func TestSubscriptionDelete(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	if err := b.Delete(ctx, "nope"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Delete of an unknown subscription: %v, want ErrNotFound", err)
	}
	register(t, b, "sub", 2, 0)
	register(t, b, "other", 1, 0)
	if _, err := b.Heartbeat(ctx, "sub", "a", longTTL); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Heartbeat(ctx, "other", "a", longTTL); err != nil {
		t.Fatal(err)
	}
	l := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]
	if err := b.Park(ctx, "sub", subscription.Parked{Position: 3, StreamID: "s", Version: 1, Type: "t", Error: "e", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "sub"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, table := range []string{"subscriptions", "subscription_members", "subscription_parked"} {
		var n int
		if err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM "+s.d.schema+"."+table+" WHERE name = 'sub'").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s rows of the deleted subscription: %d, %v; want 0", table, n, err)
		}
	}
	if got := partitions(t, b, "sub"); len(got) != 0 {
		t.Errorf("Partitions of the deleted subscription: %v, want none", got)
	}
	if got := partitions(t, b, "other"); len(got) != 1 {
		t.Errorf("Partitions of the other subscription: %v, want 1", got)
	}
	err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l.Epoch, 5)}, nil)
	if !errors.Is(err, subscription.ErrLeaseLost) || !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Commit on the deleted subscription: %v, want ErrLeaseLost and ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"Heartbeat": func() error { _, err := b.Heartbeat(ctx, "sub", "a", longTTL); return err }(),
		"Acquire":   func() error { _, err := b.Acquire(ctx, "sub", "a", []int{0}, longTTL); return err }(),
		"Park":      b.Park(ctx, "sub", subscription.Parked{Position: 4}),
		"Parked":    func() error { _, err := b.Parked(ctx, "sub"); return err }(),
		"Unpark":    b.Unpark(ctx, "sub", 3, nil),
		"Reset":     b.Reset(ctx, "sub", 0),
		"Delete":    b.Delete(ctx, "sub"),
	} {
		if !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("%s after Delete: %v, want ErrNotFound", name, err)
		}
	}
	// The name can be registered again, from scratch, its epochs starting
	// where the deleted one's ended (1: taken once), so that no member of
	// the deleted one can commit into it.
	register(t, b, "sub", 3, 9)
	want := []ownership{{0, "", false, 1}, {1, "", false, 1}, {2, "", false, 1}}
	if diff := cmp.Diff(want, ownershipOf(partitions(t, b, "sub"))); diff != "" {
		t.Errorf("partitions registered again (-want +got):\n%s", diff)
	}
}

func TestSubscriptionParked(t *testing.T) {
	s, b := subStore(t)
	ctx := t.Context()
	p := subscription.Parked{Position: 7, StreamID: "order-1", Version: 2, Type: "placed", EventID: "id-7", Error: "bad", Attempts: 3}
	if err := b.Park(ctx, "nope", p); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Park on an unknown subscription: %v, want ErrNotFound", err)
	}
	if _, err := b.Parked(ctx, "nope"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Parked of an unknown subscription: %v, want ErrNotFound", err)
	}
	register(t, b, "sub", 1, 0)
	got, err := b.Parked(ctx, "sub")
	if err != nil || len(got) != 0 {
		t.Fatalf("Parked of a subscription with none: %v, %v; want none", got, err)
	}
	var before time.Time
	if err := s.d.pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	// Time zero: the database's clock. A given time is kept (to the
	// microsecond, timestamptz's resolution).
	given := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	q := subscription.Parked{Position: 3, StreamID: "order-2", Version: 1, Type: "paid", Error: "worse\x00\xff", Attempts: 1, Time: given}
	for _, x := range []subscription.Parked{p, q} {
		if err := b.Park(ctx, "sub", x); err != nil {
			t.Fatalf("Park(%d): %v", x.Position, err)
		}
	}
	got, err = b.Parked(ctx, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Time.Before(before.Truncate(time.Microsecond)) {
		t.Fatalf("Parked: %+v; want 2, the second stamped after %v", got, before)
	}
	q.Time = given.Truncate(time.Microsecond).UTC()
	q.Error = "worse\uFFFD\uFFFD"
	p.Time = got[1].Time
	if diff := cmp.Diff([]subscription.Parked{q, p}, got); diff != "" {
		t.Errorf("Parked (-want +got):\n%s", diff)
	}
	// Parking at the same position replaces the entry.
	p.Attempts, p.Error = 4, "still bad"
	if err := b.Park(ctx, "sub", p); err != nil {
		t.Fatal(err)
	}
	got, err = b.Parked(ctx, "sub")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]subscription.Parked{q, p}, got, cmpopts.IgnoreFields(subscription.Parked{}, "Time")); diff != "" {
		t.Errorf("Parked after replacing (-want +got):\n%s", diff)
	}

	// Unpark: fn's error leaves the event parked and rolls fn back.
	boom := errors.New("boom")
	err = b.Unpark(ctx, "sub", 7, func(ctx context.Context, tx pgx.Tx) error {
		if err := insertRow(s, 7)(ctx, tx); err != nil {
			return err
		}
		return boom
	})
	if err != boom { //nolint:errorlint // the contract: fn's error itself, not wrapped
		t.Errorf("Unpark with a failing fn: %v, want fn's error itself", err)
	}
	if got, _ := b.Parked(ctx, "sub"); len(got) != 2 || len(rows(t, s)) != 0 {
		t.Errorf("after a failed Unpark: parked %v, read model %v; want both parked, no row", got, rows(t, s))
	}
	if err := b.Unpark(ctx, "sub", 7, insertRow(s, 7)); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	if err := b.Unpark(ctx, "sub", 3, nil); err != nil {
		t.Fatalf("Unpark without fn: %v", err)
	}
	if diff := cmp.Diff([]int{7}, rows(t, s)); diff != "" {
		t.Errorf("read model after Unpark (-want +got):\n%s", diff)
	}
	if got, err := b.Parked(ctx, "sub"); err != nil || len(got) != 0 {
		t.Errorf("Parked after Unpark: %v, %v; want none", got, err)
	}
	called := false
	err = b.Unpark(ctx, "sub", 7, func(context.Context, pgx.Tx) error { called = true; return nil })
	if !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Unpark of an event not parked: %v, want ErrNotFound", err)
	}
	if called {
		t.Error("Unpark ran fn for an event not parked")
	}
	if err := b.Unpark(ctx, "sub", math.MaxUint64, nil); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("Unpark at MaxUint64: %v, want ErrNotFound", err)
	}
}

func TestSubscriptionPartitions(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	got, err := b.Partitions(ctx, "")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Partitions of no subscription: %#v, %v; want an empty list", got, err)
	}
	// Byte order: "Z" < "a" < "ä".
	for _, name := range []string{"ä", "a", "Z"} {
		register(t, b, name, 2, 0)
	}
	acquire(t, b, "a", "m", []int{1}, longTTL)
	got, err = b.Partitions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, fmt.Sprintf("%s/%d", p.Subscription, p.Partition))
	}
	if diff := cmp.Diff([]string{"Z/0", "Z/1", "a/0", "a/1", "ä/0", "ä/1"}, names); diff != "" {
		t.Errorf("Partitions of all (-want +got):\n%s", diff)
	}
	one := partitions(t, b, "a")
	if diff := cmp.Diff(got[2:4], one); diff != "" {
		t.Errorf("Partitions(a) (-want +got):\n%s", diff)
	}
	if one[1].Owner != "m" || one[1].LeaseUntil.IsZero() || one[1].LeaseUntil.Location() != time.UTC || !one[0].LeaseUntil.IsZero() {
		t.Errorf("Partitions(a): %+v; want partition 1 held by m with a UTC lease, 0 free", one)
	}
	if got := partitions(t, b, "nope"); got == nil || len(got) != 0 {
		t.Errorf("Partitions of an unknown subscription: %#v, want an empty list", got)
	}
}

// TestSubscriptionInvalid: what PostgreSQL cannot store is refused as
// invalid input, before anything is written.
func TestSubscriptionInvalid(t *testing.T) {
	_, b := subStore(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	for name, err := range map[string]error{
		"RegisterNUL":   func() error { _, err := b.Register(ctx, "a\x00", 1, 0); return err }(),
		"RegisterStart": func() error { _, err := b.Register(ctx, "big", 1, math.MaxInt64+1); return err }(),
		"HeartbeatNUL":  func() error { _, err := b.Heartbeat(ctx, "sub", "m\x00", time.Second); return err }(),
		"CommitPos":     b.Commit(ctx, "sub", "m", []subscription.Lease{lease(0, 1, math.MaxUint64)}, nil),
		"ParkPos":       b.Park(ctx, "sub", subscription.Parked{Position: math.MaxUint64}),
		"ResetPos":      b.Reset(ctx, "sub", math.MaxInt64+1),
	} {
		if !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
	if got := partitions(t, b, "big"); len(got) != 0 {
		t.Errorf("a refused Register stored %v", got)
	}
}

// TestSubscriptionClosed: every method of a closed store's backend fails
// with ErrClosed.
func TestSubscriptionClosed(t *testing.T) {
	s, err := Open(t.Context(), testDSN(t), WithSchema(freshSchema(t)), WithMigrate(), WithoutListen())
	if err != nil {
		t.Fatal(err)
	}
	b := s.Subscriptions()
	register(t, b, "sub", 1, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for name, err := range map[string]error{
		"Register":   func() error { _, err := b.Register(ctx, "sub", 1, 0); return err }(),
		"Heartbeat":  func() error { _, err := b.Heartbeat(ctx, "sub", "a", time.Second); return err }(),
		"Acquire":    func() error { _, err := b.Acquire(ctx, "sub", "a", []int{0}, time.Second); return err }(),
		"Leave":      b.Leave(ctx, "sub", "a"),
		"Commit":     b.Commit(ctx, "sub", "a", nil, nil),
		"Park":       b.Park(ctx, "sub", subscription.Parked{Position: 1}),
		"Parked":     func() error { _, err := b.Parked(ctx, "sub"); return err }(),
		"Unpark":     b.Unpark(ctx, "sub", 1, nil),
		"Partitions": func() error { _, err := b.Partitions(ctx, ""); return err }(),
		"Reset":      b.Reset(ctx, "sub", 0),
		"Delete":     b.Delete(ctx, "sub"),
	} {
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestSubscriptionMigrateFromV3: a schema at version 3 (the last without
// subscriptions), with events, is brought to SchemaVersion; its events
// stay, and subscriptions work.
func TestSubscriptionMigrateFromV3(t *testing.T) {
	schema := freshSchema(t)
	other := newTestStore(t, WithoutListen(), WithoutPoll()) // for its pool
	ctx := t.Context()
	sane := pgx.Identifier{schema}.Sanitize()
	stmts := []string{
		"CREATE SCHEMA " + sane,
		"CREATE TABLE " + sane + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for v := range 3 {
		stmts = append(stmts, strings.ReplaceAll(migrations[v], "{schema}", sane),
			fmt.Sprintf("INSERT INTO %s.schema_version (version) VALUES (%d)", sane, v+1))
	}
	for _, q := range stmts {
		if _, err := other.d.pool.Exec(ctx, q); err != nil {
			t.Fatalf("set up version 3: %v", err)
		}
	}
	// Version 3's append_batch, with no outcome row.
	v3 := &pgDriver{pool: other.d.pool, schema: sane, lockKey: advisoryKey("append", schema), channel: channelName(schema), q: buildQueries(sane)}
	a, err := buildGroupArgs([]*appendReq{{stream: "old", expected: eventstore.Any, events: []eventstore.Event{evt("a"), evt("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	// Its signature had no d_hash (the 7th parameter since version 6).
	params := a.params(v3, "", 0)
	params = append(params[:6:6], params[7:]...)
	if _, err := other.d.pool.Exec(ctx, "SELECT * FROM "+sane+".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)", params...); err != nil {
		t.Fatal(err)
	}

	_, err = Open(ctx, testDSN(t), WithSchema(schema), WithoutListen())
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != 3 || sv.Supported != SchemaVersion {
		t.Fatalf("Open of a version-3 schema without migrating: %v, want a *SchemaVersionError{Found: 3, Supported: %d}", err, SchemaVersion)
	}
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
	var versions []int
	for v := 1; v <= SchemaVersion; v++ {
		versions = append(versions, v)
	}
	if diff := cmp.Diff(versions, schemaVersions(t, s.d.pool, schema)); diff != "" {
		t.Errorf("schema versions (-want +got):\n%s", diff)
	}
	got, err := eventstore.Collect(s.Read(ctx, "old", eventstore.ReadOptions{}))
	if err != nil || len(got) != 2 {
		t.Fatalf("events after migrating: %d, %v; want 2", len(got), err)
	}
	b := s.Subscriptions()
	register(t, b, "sub", 2, 2)
	l := acquire(t, b, "sub", "a", []int{0}, longTTL)
	if err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l[0].Epoch, 2)}, nil); err != nil {
		t.Errorf("Commit after migrating: %v", err)
	}
}

// TestSubscriptionTwoStores: two stores (as two processes would) on one
// schema share leases: what one member holds through one store, another
// cannot take through the other, and members racing for every partition
// through both end up holding each partition once.
func TestSubscriptionTwoStores(t *testing.T) {
	schema := freshSchema(t)
	s1 := openStore(t, schema, WithoutListen(), WithoutPoll())
	s2 := openStore(t, schema, WithoutListen(), WithoutPoll())
	b1, b2 := s1.Subscriptions(), s2.Subscriptions()
	ctx := t.Context()
	register(t, b1, "sub", 8, 0)
	if n, err := b2.Register(ctx, "sub", 4, 0); err != nil || n != 8 {
		t.Fatalf("Register through the second store: %d, %v; want the stored 8", n, err)
	}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for round := range 10 {
		members := []string{"a", "b", "c", "d", "e", "f"}
		held := make([][]subscription.Lease, len(members))
		var g errgroup.Group
		for i, m := range members {
			b := b1
			if i%2 == 1 {
				b = b2
			}
			g.Go(func() (err error) {
				held[i], err = b.Acquire(ctx, "sub", m, all, longTTL)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("round %d: Acquire: %v", round, err)
		}
		owner := map[int]string{}
		for i, ls := range held {
			for _, l := range ls {
				if o, ok := owner[l.Partition]; ok {
					t.Errorf("round %d: partition %d held by %s and %s", round, l.Partition, o, members[i])
				}
				owner[l.Partition] = members[i]
				// Each commits through the other store.
				b := b2
				if i%2 == 1 {
					b = b1
				}
				if err := b.Commit(ctx, "sub", members[i], []subscription.Lease{lease(l.Partition, l.Epoch, uint64(round+1))}, nil); err != nil {
					t.Errorf("round %d: Commit by %s of partition %d: %v", round, members[i], l.Partition, err)
				}
			}
		}
		if len(owner) != len(all) {
			t.Errorf("round %d: %d partitions held, want %d", round, len(owner), len(all))
		}
		for _, p := range partitions(t, b2, "sub") {
			if p.Owner != owner[p.Partition] || p.Position != uint64(round+1) {
				t.Errorf("round %d: partition %d owned by %q at %d, want %q at %d", round, p.Partition, p.Owner, p.Position, owner[p.Partition], round+1)
			}
		}
		for _, m := range members {
			if err := b1.Leave(ctx, "sub", m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSubscriptionConcurrentUse: members acquiring, committing (with
// handler writes) and heartbeating concurrently through two stores, with
// Resets in between, get no error but ErrLeaseLost: no deadlock, no
// serialisation failure.
func TestSubscriptionConcurrentUse(t *testing.T) {
	schema := freshSchema(t)
	s1 := openStore(t, schema, WithoutListen(), WithoutPoll())
	s2 := openStore(t, schema, WithoutListen(), WithoutPoll())
	if _, err := s1.d.pool.Exec(t.Context(), "CREATE TABLE "+s1.d.schema+".rm (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	register(t, s1.Subscriptions(), "sub", 8, 0)
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	var g errgroup.Group
	const members, rounds = 4, 25
	for i := range members {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		b, m := s.Subscriptions(), fmt.Sprintf("m%d", i)
		g.Go(func() error {
			for r := range rounds {
				if _, err := b.Heartbeat(ctx, "sub", m, time.Second); err != nil {
					return fmt.Errorf("%s Heartbeat: %w", m, err)
				}
				// Overlapping wants, and a short lease now and then so
				// that partitions change hands.
				want := all[i%3 : 4+i%5]
				ttl := longTTL
				if r%4 == 0 {
					ttl = time.Millisecond
				}
				leases, err := b.Acquire(ctx, "sub", m, want, ttl)
				if err != nil {
					return fmt.Errorf("%s Acquire: %w", m, err)
				}
				cps := make([]subscription.Lease, len(leases))
				for j, l := range leases {
					cps[len(leases)-1-j] = subscription.Lease{Partition: l.Partition, Epoch: l.Epoch, Position: l.Position + 1}
				}
				id := i*1000 + r
				err = b.Commit(ctx, "sub", m, cps, insertRow(s, id))
				if err != nil && !errors.Is(err, subscription.ErrLeaseLost) {
					return fmt.Errorf("%s Commit: %w", m, err)
				}
				if i == 0 && r%10 == 5 {
					if err := b.Reset(ctx, "sub", 0); err != nil {
						return fmt.Errorf("Reset: %w", err)
					}
				}
			}
			return b.Leave(ctx, "sub", m)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	want := []ownership{}
	for p := range 8 {
		want = append(want, ownership{Partition: p})
	}
	if diff := cmp.Diff(want, ownershipOf(partitions(t, s2.Subscriptions(), "sub")), cmpopts.IgnoreFields(ownership{}, "Epoch")); diff != "" {
		t.Errorf("after every member left (-want +got):\n%s", diff)
	}
}

// TestSubscriptionCommitKilled: a Commit whose connection is terminated
// at any moment (in fn, at the checkpoint, during COMMIT) leaves both
// fn's row and the checkpoint, or neither.
func TestSubscriptionCommitKilled(t *testing.T) {
	s, b := subStore(t)
	admin := adminConn(t)
	ctx := t.Context()
	register(t, b, "sub", 1, 0)
	l := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]
	// The spread of the kill's delay, in microseconds: about twice a
	// Commit's duration, measured first.
	start := time.Now()
	if err := b.Commit(ctx, "sub", "a", nil, insertRow(s, 0)); err != nil {
		t.Fatal(err)
	}
	spread := max(int(2*time.Since(start)/time.Microsecond), 100)
	outcomes := map[string]int{}
	for i := 1; i <= 60; i++ {
		pids := make(chan uint32, 1)
		killed := make(chan error, 1)
		go func() {
			pid, ok := <-pids
			if !ok {
				killed <- nil
				return
			}
			// Random timing, not synchronisation: the property holds
			// wherever the kill lands, and a spread of delays makes it
			// land in fn, in the checkpoint and around COMMIT.
			time.Sleep(time.Duration(rand.IntN(spread)) * time.Microsecond)
			_, err := admin.Exec(context.WithoutCancel(ctx), "SELECT pg_terminate_backend($1)", pid)
			if err == nil {
				// Wait for the backend to be gone: its transaction is
				// then decided.
				deadline := time.Now().Add(waitTimeout)
				for {
					var n int
					if err = admin.QueryRow(context.WithoutCancel(ctx), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil || n == 0 {
						break
					}
					if time.Now().After(deadline) {
						err = fmt.Errorf("backend %d still there after %v", pid, waitTimeout)
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			killed <- err
		}()
		sent := false
		err := b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l.Epoch, uint64(i))}, func(ctx context.Context, tx pgx.Tx) error {
			var pid uint32
			if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			pids <- pid
			sent = true
			return insertRow(s, i)(ctx, tx)
		})
		if !sent {
			close(pids) // the kill is moot: the connection failed before fn
		}
		if kerr := <-killed; sent && kerr != nil {
			t.Fatalf("round %d: terminate: %v", i, kerr)
		}
		var hasRow bool
		var pos int64
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+s.d.schema+".rm WHERE id = $1), (SELECT position FROM "+
			s.d.schema+".subscriptions WHERE name = 'sub')", i).Scan(&hasRow, &pos); err != nil {
			t.Fatal(err)
		}
		checkpointed := pos == int64(i)
		if hasRow != checkpointed {
			t.Fatalf("round %d: Commit returned %v; row written %v, checkpoint written %v (position %d): want both or neither", i, err, hasRow, checkpointed, pos)
		}
		if err == nil && !hasRow {
			t.Fatalf("round %d: Commit succeeded but nothing is stored", i)
		}
		switch {
		case err == nil:
			outcomes["committed"]++
		case hasRow:
			outcomes["error, committed"]++
		default:
			outcomes["error, rolled back"]++
		}
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["error, rolled back"] == 0 {
		t.Error("no kill landed before the commit: the test exercised nothing")
	}
	if outcomes["committed"]+outcomes["error, committed"] == 0 {
		t.Error("every kill landed before the commit: the test exercised only that")
	}
}

// TestSubscriptionCommitKilledDuringCommit: a Commit whose connection is
// terminated while COMMIT itself runs (held there by a deferred trigger
// on the handler's table that waits for a lock the test holds) commits
// neither fn's row nor the checkpoint, and returns an error. The same
// Commit, let through, commits both.
func TestSubscriptionCommitKilledDuringCommit(t *testing.T) {
	s, b := subStore(t)
	admin := adminConn(t)
	ctx := t.Context()
	key := advisoryKey("test-commit-gate", s.Schema())
	for _, q := range []string{
		`CREATE FUNCTION ` + s.d.schema + `.rm_gate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock(` + fmt.Sprint(key) + `); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER rm_gate AFTER INSERT ON ` + s.d.schema + `.rm
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ` + s.d.schema + `.rm_gate()`,
	} {
		if _, err := s.d.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	register(t, b, "sub", 1, 0)
	l := acquire(t, b, "sub", "a", []int{0}, longTTL)[0]

	// gated starts a Commit of row id and checkpoint id, and returns the
	// PID of its backend once that waits for the gate in COMMIT.
	gated := func(id int) (uint32, chan error) {
		t.Helper()
		if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- b.Commit(ctx, "sub", "a", []subscription.Lease{lease(0, l.Epoch, uint64(id))}, insertRow(s, id))
		}()
		var pid uint32
		waitFor(t, "the Commit waits for the gate in COMMIT", func() (bool, error) {
			k := uint64(key)
			err := admin.QueryRow(ctx, `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
				WHERE l.locktype = 'advisory' AND NOT l.granted AND l.classid::bigint = $1 AND l.objid::bigint = $2
				AND l.objsubid = 1 AND a.query ILIKE 'commit%'`, int64(k>>32), int64(k&0xffffffff)).Scan(&pid)
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		})
		return pid, done
	}
	state := func() (bool, int64) {
		t.Helper()
		var hasRow bool
		var pos int64
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+s.d.schema+".rm), (SELECT position FROM "+
			s.d.schema+".subscriptions WHERE name = 'sub')").Scan(&hasRow, &pos); err != nil {
			t.Fatal(err)
		}
		return hasRow, pos
	}

	_, done := gated(1)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Commit let through the gate: %v", err)
	}
	if hasRow, pos := state(); !hasRow || pos != 1 {
		t.Fatalf("after a Commit let through: row %v, position %d; want the row and 1", hasRow, pos)
	}
	if _, err := admin.Exec(ctx, "DELETE FROM "+s.d.schema+".rm"); err != nil {
		t.Fatal(err)
	}

	pid, done := gated(2)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if _, uerr := admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); uerr != nil {
		t.Fatal(uerr)
	}
	if err == nil {
		t.Fatal("Commit whose connection was killed in COMMIT returned nil")
	}
	if hasRow, pos := state(); hasRow || pos != 1 {
		t.Errorf("after a Commit killed in COMMIT (%v): row %v, position %d; want neither (no row, position 1)", err, hasRow, pos)
	}
}
