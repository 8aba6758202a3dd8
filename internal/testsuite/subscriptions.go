package testsuite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// BackendFeatures describes optional abilities of the subscription
// backends under test. The zero value runs every subtest that needs only
// the factory.
type BackendFeatures[Tx any] struct {
	// NewPair, when set, returns two backends on one new, empty database,
	// as two processes would each open it, and registers their release
	// with t.Cleanup. It enables the Backend/Shared subtests.
	NewPair func(t *testing.T) (a, b subscription.Backend[Tx])
	// NewClosing, when set, returns a new, empty backend and the function
	// that closes the store under it. It enables Backend/Close, which
	// checks that every method fails with eventstore.ErrClosed after it.
	NewClosing func(t *testing.T) (b subscription.Backend[Tx], closeStore func() error)
}

// RunBackend runs the conformance suite of [subscription.Backend] against
// the backends newBackend returns: RunBackendFeatures with the zero
// BackendFeatures.
func RunBackend[Tx any](t *testing.T, newBackend func(t *testing.T) subscription.Backend[Tx]) {
	t.Helper()
	RunBackendFeatures(t, newBackend, BackendFeatures[Tx]{})
}

// RunBackendFeatures runs the conformance suite of [subscription.Backend].
//
// newBackend is called once per leaf subtest, with that subtest's t, from
// parallel subtests: each backend it returns must be on a new, empty
// database of its own. Subtests are named Backend/<Method>/<Case>.
//
// Transactions are opaque to the suite: it checks that Commit and Unpark
// call fn once, with a Tx that is not the zero value (a nil *sql.Tx or
// pgx.Tx is never a transaction), and what the backend does with fn's
// error, but not that fn's own writes are rolled back.
//
// Leases and members that must expire are given a ttl of 50ms; the suite
// then waits, polling with a deadline, until the backend's own clock says
// that time has passed (a member heartbeated with the same ttl is gone).
func RunBackendFeatures[Tx any](t *testing.T, newBackend func(t *testing.T) subscription.Backend[Tx], f BackendFeatures[Tx]) {
	t.Helper()
	leaf := func(fn func(t *testing.T, b subscription.Backend[Tx])) func(t *testing.T) {
		return func(t *testing.T) {
			t.Helper()
			b := newBackend(t)
			if b == nil {
				t.Fatal("factory returned a nil backend")
			}
			fn(t, b)
		}
	}
	type bt struct {
		name string
		run  func(t *testing.T)
	}
	groups := []struct {
		name  string
		tests []bt
	}{
		{"Register", []bt{
			{"New", leaf(testRegisterNew[Tx])},
			{"Existing", leaf(testRegisterExisting[Tx])},
			{"AfterDeleteNewEpochs", leaf(testRegisterAfterDelete[Tx])},
			{"NameLimits", leaf(testRegisterNameLimits[Tx])},
			{"MaxPartitions", leaf(testRegisterMaxPartitions[Tx])},
		}},
		{"Heartbeat", []bt{
			{"LiveMembersSorted", leaf(testHeartbeatSorted[Tx])},
			{"ForgetsExpired", leaf(testHeartbeatForgetsExpired[Tx])},
			{"Extends", leaf(testHeartbeatExtends[Tx])},
			{"UnknownSubscription", leaf(testHeartbeatUnknown[Tx])},
		}},
		{"Acquire", []bt{
			{"TakesFree", leaf(testAcquireTakesFree[Tx])},
			{"ExtendsOwn", leaf(testAcquireExtendsOwn[Tx])},
			{"ExtendsOwnEnded", leaf(testAcquireExtendsOwnEnded[Tx])},
			{"NotLiveOfOther", leaf(testAcquireNotLiveOfOther[Tx])},
			{"TakesExpired", leaf(testAcquireTakesExpired[Tx])},
			{"ReleasesUnwanted", leaf(testAcquireReleasesUnwanted[Tx])},
			{"Order", leaf(testAcquireOrder[Tx])},
			{"MaxPartitions", leaf(testAcquireMaxPartitions[Tx])},
			{"Concurrent", leaf(testAcquireConcurrent[Tx])},
			{"UnknownSubscription", leaf(testAcquireUnknown[Tx])},
		}},
		{"Leave", []bt{
			{"ReleasesAndForgets", leaf(testLeaveReleases[Tx])},
			{"Unknown", leaf(testLeaveUnknown[Tx])},
		}},
		{"Commit", []bt{
			{"MovesPositions", leaf(testCommitMoves[Tx])},
			{"NeverBackwards", leaf(testCommitNeverBackwards[Tx])},
			{"WrongEpoch", leaf(testCommitWrongEpoch[Tx])},
			{"WrongOwner", leaf(testCommitWrongOwner[Tx])},
			{"LostLeaseCommitsNothing", leaf(testCommitAllOrNothing[Tx])},
			{"AfterLeaseEnded", leaf(testCommitAfterLeaseEnded[Tx])},
			{"RunsFn", leaf(testCommitRunsFn[Tx])},
			{"HandlerErrorAsIs", leaf(testCommitFnErrorAsIs[Tx])},
			{"HandlerErrorRollsBack", leaf(testCommitFnErrorRollsBack[Tx])},
			{"AfterDelete", leaf(testCommitAfterDelete[Tx])},
		}},
		{"Park", []bt{
			{"Replaces", leaf(testParkReplaces[Tx])},
			{"UnknownSubscription", leaf(testParkUnknown[Tx])},
			{"ClearsReplayRequest", leaf(testParkClearsRequest[Tx])},
		}},
		{"RequestReplay", []bt{
			{"MarksOne", leaf(testRequestReplayOne[Tx])},
			{"MarksAll", leaf(testRequestReplayAll[Tx])},
			{"NotFound", leaf(testRequestReplayNotFound[Tx])},
		}},
		{"ClearReplay", []bt{
			{"UpdatesAndClears", leaf(testClearReplayUpdates[Tx])},
			{"KeepsNewerRequest", leaf(testClearReplayKeepsNewer[Tx])},
			{"DiscardedStaysGone", leaf(testClearReplayDiscarded[Tx])},
			{"UnknownSubscription", leaf(testClearReplayUnknown[Tx])},
		}},
		{"ReplayRequests", []bt{
			{"OnlyRequestedInOrder", leaf(testReplayRequestsOnly[Tx])},
			{"UnparkForgets", leaf(testReplayRequestsUnpark[Tx])},
			{"UnknownSubscription", leaf(testReplayRequestsUnknown[Tx])},
		}},
		{"Parked", []bt{
			{"Order", leaf(testParkedOrder[Tx])},
			{"PerSubscription", leaf(testParkedPerSubscription[Tx])},
			{"UnknownSubscription", leaf(testParkedUnknown[Tx])},
		}},
		{"Unpark", []bt{
			{"RunsFnAndDeletes", leaf(testUnparkDeletes[Tx])},
			{"NilFn", leaf(testUnparkNilFn[Tx])},
			{"NotFound", leaf(testUnparkNotFound[Tx])},
			{"HandlerErrorKeepsRow", leaf(testUnparkFnError[Tx])},
		}},
		{"Partitions", []bt{
			{"One", leaf(testPartitionsOne[Tx])},
			{"AllOrdered", leaf(testPartitionsAll[Tx])},
			{"Unknown", leaf(testPartitionsUnknown[Tx])},
		}},
		{"Reset", []bt{
			{"SetsPositions", leaf(testResetPositions[Tx])},
			{"GrowsEpochs", leaf(testResetEpochs[Tx])},
			{"OldHolderLosesLease", leaf(testResetOldHolder[Tx])},
			{"UnknownSubscription", leaf(testResetUnknown[Tx])},
		}},
		{"Delete", []bt{
			{"RemovesEverything", leaf(testDeleteEverything[Tx])},
			{"OthersUntouched", leaf(testDeleteOthers[Tx])},
			{"UnknownSubscription", leaf(testDeleteUnknown[Tx])},
		}},
	}
	if f.NewPair != nil {
		pair := func(fn func(t *testing.T, a, b subscription.Backend[Tx])) func(t *testing.T) {
			return func(t *testing.T) {
				t.Helper()
				a, b := f.NewPair(t)
				if a == nil || b == nil {
					t.Fatal("pair factory returned a nil backend")
				}
				fn(t, a, b)
			}
		}
		groups = append(groups, struct {
			name  string
			tests []bt
		}{"Shared", []bt{
			{"LeasesAcrossHandles", pair(testSharedLeases[Tx])},
			{"ResetThroughOther", pair(testSharedReset[Tx])},
			{"MembersAcrossHandles", pair(testSharedMembers[Tx])},
			{"ConcurrentAcquire", pair(testSharedConcurrent[Tx])},
		}})
	} else {
		t.Log("BackendFeatures.NewPair is nil: skipping Backend/Shared (two handles on one database)")
	}
	if f.NewClosing != nil {
		groups = append(groups, struct {
			name  string
			tests []bt
		}{"Close", []bt{
			{"EveryMethod", func(t *testing.T) {
				b, closeFn := f.NewClosing(t)
				if b == nil {
					t.Fatal("closing factory returned a nil backend")
				}
				testCloseEveryMethod(t, b, closeFn)
			}},
		}})
	} else {
		t.Log("BackendFeatures.NewClosing is nil: skipping Backend/Close")
	}
	t.Run("Backend", func(t *testing.T) {
		t.Parallel()
		for _, g := range groups {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				for _, tc := range g.tests {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						tc.run(t)
					})
				}
			})
		}
	})
}

// Lease lengths of the suite: long enough never to end during a subtest,
// or short enough to wait out.
const (
	longTTL  = 10 * time.Minute
	shortTTL = 50 * time.Millisecond
)

// pstate is the part of a Partition every case compares; times are checked
// on their own, within timeSlack.
type pstate struct {
	Subscription string
	Partition    int
	Position     uint64
	Owner        string
	Epoch        uint64
}

func states(ps []subscription.Partition) []pstate {
	out := make([]pstate, len(ps))
	for i, p := range ps {
		out[i] = pstate{p.Subscription, p.Partition, p.Position, p.Owner, p.Epoch}
	}
	return out
}

func mustRegister[Tx any](t *testing.T, b subscription.Backend[Tx], name string, n int, start uint64) {
	t.Helper()
	got, err := b.Register(ctxTimeout(t), name, n, start)
	if err != nil {
		t.Fatalf("Register(%q, %d, %d): %v", name, n, start, err)
	}
	if got != n {
		t.Fatalf("Register(%q, %d, %d) of a new subscription = %d, want %d", name, n, start, got, n)
	}
}

func mustPartitions[Tx any](t *testing.T, b subscription.Backend[Tx], name string) []subscription.Partition {
	t.Helper()
	ps, err := b.Partitions(ctxTimeout(t), name)
	if err != nil {
		t.Fatalf("Partitions(%q): %v", name, err)
	}
	return ps
}

func mustAcquire[Tx any](t *testing.T, b subscription.Backend[Tx], name, member string, want []int, ttl time.Duration) []subscription.Lease {
	t.Helper()
	ls, err := b.Acquire(ctxTimeout(t), name, member, want, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q, %v): %v", name, member, want, err)
	}
	return ls
}

func mustCommit[Tx any](t *testing.T, b subscription.Backend[Tx], name, member string, cps ...subscription.Lease) {
	t.Helper()
	if err := b.Commit(ctxTimeout(t), name, member, cps, nil); err != nil {
		t.Fatalf("Commit(%q, %q, %+v): %v", name, member, cps, err)
	}
}

func mustHeartbeat[Tx any](t *testing.T, b subscription.Backend[Tx], name, member string, ttl time.Duration) []string {
	t.Helper()
	live, err := b.Heartbeat(ctxTimeout(t), name, member, ttl)
	if err != nil {
		t.Fatalf("Heartbeat(%q, %q): %v", name, member, err)
	}
	return live
}

func mustParked[Tx any](t *testing.T, b subscription.Backend[Tx], name string) []subscription.Parked {
	t.Helper()
	ps, err := b.Parked(ctxTimeout(t), name)
	if err != nil {
		t.Fatalf("Parked(%q): %v", name, err)
	}
	return ps
}

// wantStates compares the partitions of name with want.
func wantStates[Tx any](t *testing.T, b subscription.Backend[Tx], name, what string, want []pstate) {
	t.Helper()
	if diff := cmp.Diff(want, states(mustPartitions(t, b, name)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: partitions of %q (-want +got):\n%s", what, name, diff)
	}
}

// wantNewStates is wantStates for partitions no one took yet, whose epoch
// is the backend's choice.
func wantNewStates[Tx any](t *testing.T, b subscription.Backend[Tx], name, what string, want []pstate) {
	t.Helper()
	if diff := cmp.Diff(want, states(mustPartitions(t, b, name)), cmpopts.EquateEmpty(), cmpopts.IgnoreFields(pstate{}, "Epoch")); diff != "" {
		t.Errorf("%s: partitions of %q (-want +got, epochs ignored):\n%s", what, name, diff)
	}
}

// lease is a Lease literal (go vet wants keyed fields for another
// package's structs).
func lease(partition int, epoch, position uint64) subscription.Lease {
	return subscription.Lease{Partition: partition, Epoch: epoch, Position: position}
}

func wantLeases(t *testing.T, what string, want, got []subscription.Lease) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: leases (-want +got):\n%s", what, diff)
	}
}

// epochs returns the epoch of each partition of name.
func epochs[Tx any](t *testing.T, b subscription.Backend[Tx], name string) []uint64 {
	t.Helper()
	var out []uint64
	for _, p := range mustPartitions(t, b, name) {
		out = append(out, p.Epoch)
	}
	return out
}

// probe marks the backend's present: a member heartbeated with shortTTL,
// whose disappearance wait observes. What was given shortTTL before the
// probe has ended once the probe is gone, by the backend's own clock.
type probe struct{ name, member string }

func newProbe[Tx any](t *testing.T, b subscription.Backend[Tx], name string) probe {
	t.Helper()
	p := probe{name, fmt.Sprintf("probe-%d", time.Now().UnixNano())}
	mustHeartbeat(t, b, name, p.member, shortTTL)
	return p
}

// wait polls until the probe's member has expired, then forgets the
// members it used.
func (p probe) wait(t *testing.T, b interface {
	Heartbeat(context.Context, string, string, time.Duration) ([]string, error)
	Leave(context.Context, string, string) error
}) {
	t.Helper()
	const waiter = "probe-waiter"
	deadline := time.Now().Add(waitTimeout)
	for {
		time.Sleep(shortTTL / 2)
		live, err := b.Heartbeat(ctxTimeout(t), p.name, waiter, longTTL)
		if err != nil {
			t.Fatalf("Heartbeat while waiting for a %v ttl to pass: %v", shortTTL, err)
		}
		if !slices.Contains(live, p.member) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %q heartbeated with ttl %v still live after %v: members are never forgotten", p.member, shortTTL, waitTimeout)
		}
	}
	if err := b.Leave(ctxTimeout(t), p.name, waiter); err != nil {
		t.Fatalf("Leave: %v", err)
	}
}

// checkLeaseUntil checks that the partitions owned by member have a lease
// ending ttl after a time in [lo, hi].
func checkLeaseUntil[Tx any](t *testing.T, b subscription.Backend[Tx], name, member string, ttl time.Duration, lo, hi time.Time) {
	t.Helper()
	for _, p := range mustPartitions(t, b, name) {
		if p.Owner != member {
			if p.Owner == "" && !p.LeaseUntil.IsZero() {
				t.Errorf("partition %d has no owner but LeaseUntil %v, want zero", p.Partition, p.LeaseUntil)
			}
			continue
		}
		checkTime(t, fmt.Sprintf("partition %d LeaseUntil", p.Partition), p.LeaseUntil, lo.Add(ttl), hi.Add(ttl))
	}
}

// txCalls counts the calls of a Commit's or Unpark's fn and checks what
// each is given.
type txCalls[Tx any] struct {
	t   *testing.T
	mu  sync.Mutex
	n   int
	err error // what fn returns
}

func (c *txCalls[Tx]) fn(ctx context.Context, tx Tx) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if ctx == nil {
		c.t.Errorf("fn called with a nil context")
	}
	if reflect.ValueOf(&tx).Elem().IsZero() {
		c.t.Errorf("fn called with the zero %T, want the transaction", tx)
	}
	return c.err
}

func (c *txCalls[Tx]) wantCalls(what string, n int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n != n {
		c.t.Errorf("%s: fn called %d times, want %d", what, c.n, n)
	}
}

// handlerError is an error a Commit's or Unpark's fn returns, which must
// come back as it is: the same pointer.
type handlerError struct{ msg string }

func (e *handlerError) Error() string { return e.msg }

func wantSameError(t *testing.T, what string, got, want error) {
	t.Helper()
	if got != want { //nolint:errorlint // the contract: fn's error returned as it is, not wrapped
		t.Errorf("%s: error %v (%T), want fn's error as it is: %v", what, got, got, want)
	}
}

const sub = "orders"

// Register

func testRegisterNew[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	lo := time.Now()
	mustRegister(t, b, sub, 3, 7)
	hi := time.Now()
	wantNewStates(t, b, sub, "a new subscription", []pstate{{sub, 0, 7, "", 0}, {sub, 1, 7, "", 0}, {sub, 2, 7, "", 0}})
	ps := mustPartitions(t, b, sub)
	for _, p := range ps {
		if !p.LeaseUntil.IsZero() {
			t.Errorf("partition %d: LeaseUntil %v, want zero (no owner)", p.Partition, p.LeaseUntil)
		}
		if !p.Updated.IsZero() {
			checkTime(t, fmt.Sprintf("partition %d Updated", p.Partition), p.Updated, lo, hi)
		}
	}
}

// testRegisterAfterDelete creates a subscription again under a deleted
// one's name: a member of the deleted one still holds its lease's epoch
// and, with a batch under way, commits with it. The new subscription must
// refuse that commit, whatever the new one's holder is: its epochs start
// past every epoch of the deleted one.
func testRegisterAfterDelete[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	ctx := ctxTimeout(t)
	mustRegister(t, b, sub, 2, 0)
	old := mustAcquire(t, b, sub, "m", []int{0, 1}, time.Minute)
	if err := b.Delete(ctx, sub); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustRegister(t, b, sub, 2, 100)
	now := mustAcquire(t, b, sub, "m", []int{0, 1}, time.Minute)
	if len(now) != 2 || len(old) != 2 {
		t.Fatalf("leases before %v, after %v: want two each", old, now)
	}
	for i := range now {
		if now[i].Epoch <= old[i].Epoch {
			t.Errorf("partition %d: epoch %d in the subscription created again, %d in the deleted one: want it past",
				i, now[i].Epoch, old[i].Epoch)
		}
	}
	err := b.Commit(ctx, sub, "m", []subscription.Lease{{Partition: 0, Epoch: old[0].Epoch, Position: 150}}, nil)
	wantErr(t, "Commit with the deleted subscription's epoch", err, subscription.ErrLeaseLost)
	if p := mustPartitions(t, b, sub)[0].Position; p != 100 {
		t.Errorf("position %d after the refused commit, want 100", p)
	}
}

func testRegisterExisting[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 7)
	before := states(mustPartitions(t, b, sub))
	for _, n := range []int{5, 1, 3} {
		got, err := b.Register(ctxTimeout(t), sub, n, 99)
		if err != nil {
			t.Fatalf("Register again with n=%d: %v", n, err)
		}
		if got != 3 {
			t.Errorf("Register again with n=%d = %d, want the stored 3", n, got)
		}
	}
	wantStates(t, b, sub, "after registering again", before)
}

func testRegisterNameLimits[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	// Names of MaxNameLen bytes, multi-byte characters included, and names
	// that differ only in case or by a LIKE wildcard, are distinct.
	long := strings.Repeat("é", subscription.MaxNameLen/2)
	member := strings.Repeat("ß", subscription.MaxNameLen/2)
	names := []string{long, "Sub", "sub", "s_b", "s%b"}
	for i, name := range names {
		mustRegister(t, b, name, i+1, uint64(i))
	}
	for i, name := range names {
		ps := mustPartitions(t, b, name)
		if len(ps) != i+1 {
			t.Errorf("Partitions(%q): %d partitions, want %d", name, len(ps), i+1)
		}
		for _, p := range ps {
			if p.Subscription != name {
				t.Errorf("Partitions(%q): partition named %q", name, p.Subscription)
			}
		}
	}
	ls := mustAcquire(t, b, long, member, []int{0}, longTTL)
	if len(ls) != 1 {
		t.Fatalf("Acquire by a %d-byte member: %+v, want partition 0", len(member), ls)
	}
	if got := mustPartitions(t, b, long)[0].Owner; got != member {
		t.Errorf("owner %q, want the %d-byte member", got, len(member))
	}
	if diff := cmp.Diff([]string{member}, mustHeartbeat(t, b, long, member, longTTL)); diff != "" {
		t.Errorf("Heartbeat (-want +got):\n%s", diff)
	}
}

func testRegisterMaxPartitions[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, subscription.MaxPartitions, 1)
	ps := mustPartitions(t, b, sub)
	if len(ps) != subscription.MaxPartitions {
		t.Fatalf("%d partitions, want %d", len(ps), subscription.MaxPartitions)
	}
	for i, p := range ps {
		if p.Partition != i || p.Position != 1 {
			t.Fatalf("partition %d: %+v, want partition %d at position 1", i, p, i)
		}
	}
}

// Heartbeat

func testHeartbeatSorted[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	if diff := cmp.Diff([]string{"m2"}, mustHeartbeat(t, b, sub, "m2", longTTL)); diff != "" {
		t.Errorf("first member (-want +got):\n%s", diff)
	}
	mustHeartbeat(t, b, sub, "m3", longTTL)
	// Sorted as Go sorts strings, by bytes ("M9" before "m1"), whatever
	// the database's collation: every member must compute the same order.
	mustHeartbeat(t, b, sub, "M9", longTTL)
	if diff := cmp.Diff([]string{"M9", "m1", "m2", "m3"}, mustHeartbeat(t, b, sub, "m1", longTTL)); diff != "" {
		t.Errorf("live members (-want +got):\n%s", diff)
	}
	// Again: a member's second heartbeat does not list it twice.
	if diff := cmp.Diff([]string{"M9", "m1", "m2", "m3"}, mustHeartbeat(t, b, sub, "m2", longTTL)); diff != "" {
		t.Errorf("live members after a second heartbeat (-want +got):\n%s", diff)
	}
}

func testHeartbeatForgetsExpired[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustHeartbeat(t, b, sub, "stays", longTTL)
	if diff := cmp.Diff([]string{"goes", "stays"}, mustHeartbeat(t, b, sub, "goes", shortTTL)); diff != "" {
		t.Errorf("live members (-want +got):\n%s", diff)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		time.Sleep(shortTTL / 2)
		live := mustHeartbeat(t, b, sub, "stays", longTTL)
		if !slices.Contains(live, "goes") {
			if diff := cmp.Diff([]string{"stays"}, live); diff != "" {
				t.Errorf("live members after %q's ttl (-want +got):\n%s", "goes", diff)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member heartbeated with ttl %v still live after %v", shortTTL, waitTimeout)
		}
	}
}

func testHeartbeatExtends[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustHeartbeat(t, b, sub, "m", shortTTL)
	mustHeartbeat(t, b, sub, "m", longTTL)
	p := newProbe(t, b, sub)
	p.wait(t, b)
	if diff := cmp.Diff([]string{"m", "n"}, mustHeartbeat(t, b, sub, "n", longTTL)); diff != "" {
		t.Errorf("a member whose second heartbeat has a longer ttl (-want +got):\n%s", diff)
	}
}

func testHeartbeatUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	_, err := b.Heartbeat(ctxTimeout(t), "nosuch", "m", longTTL)
	wantErr(t, "Heartbeat of an unknown subscription", err, eventstore.ErrNotFound)
}

// Acquire

func testAcquireTakesFree[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 4, 5)
	e := epochs(t, b, sub)
	lo := time.Now()
	got := mustAcquire(t, b, sub, "a", []int{0, 2}, longTTL)
	hi := time.Now()
	wantLeases(t, "free partitions", []subscription.Lease{lease(0, e[0]+1, 5), lease(2, e[2]+1, 5)}, got)
	wantStates(t, b, sub, "after Acquire", []pstate{
		{sub, 0, 5, "a", e[0] + 1}, {sub, 1, 5, "", e[1]}, {sub, 2, 5, "a", e[2] + 1}, {sub, 3, 5, "", e[3]},
	})
	checkLeaseUntil(t, b, sub, "a", longTTL, lo, hi)
}

func testAcquireExtendsOwn[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	first := mustAcquire(t, b, sub, "a", []int{0, 1}, time.Minute)
	lo := time.Now()
	got := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	hi := time.Now()
	wantLeases(t, "held partitions again (epochs unchanged)", first, got)
	checkLeaseUntil(t, b, sub, "a", longTTL, lo, hi)
}

// testAcquireExtendsOwnEnded checks that a member whose lease ended, but
// whose partition no one took, keeps it under the same epoch: it still
// holds it, as Commit's doc says.
func testAcquireExtendsOwnEnded[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	first := mustAcquire(t, b, sub, "a", []int{0}, shortTTL)
	newProbe(t, b, sub).wait(t, b)
	got := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	wantLeases(t, "own partition after its lease ended (epoch unchanged)", first, got)
}

func testAcquireNotLiveOfOther[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	before := states(mustPartitions(t, b, sub))
	got := mustAcquire(t, b, sub, "b", []int{0, 1, 2}, longTTL)
	wantLeases(t, "b wants a's partitions too", []subscription.Lease{lease(2, before[2].Epoch+1, 0)}, got)
	before[2].Owner, before[2].Epoch = "b", before[2].Epoch+1
	wantStates(t, b, sub, "after b's Acquire", before)
	wantLeases(t, "a again", a, mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL))
}

func testAcquireTakesExpired[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, shortTTL)
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 12})
	newProbe(t, b, sub).wait(t, b)
	got := mustAcquire(t, b, sub, "b", []int{0}, longTTL)
	wantLeases(t, "a's ended lease", []subscription.Lease{lease(0, a[0].Epoch+1, 12)}, got)
	wantStates(t, b, sub, "after b took partition 0", []pstate{{sub, 0, 12, "b", a[0].Epoch + 1}, {sub, 1, 0, "a", a[1].Epoch}})
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 20}}, nil)
	wantErr(t, "a's Commit after b took its partition", err, subscription.ErrLeaseLost)
}

func testAcquireReleasesUnwanted[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1, 2}, longTTL)
	wantLeases(t, "a keeps only 1", a[1:2], mustAcquire(t, b, sub, "a", []int{1}, longTTL))
	wantStates(t, b, sub, "released partitions (no owner, epoch unchanged)", []pstate{
		{sub, 0, 0, "", a[0].Epoch}, {sub, 1, 0, "a", a[1].Epoch}, {sub, 2, 0, "", a[2].Epoch},
	})
	checkLeaseUntil(t, b, sub, "a", longTTL, time.Now().Add(-time.Minute), time.Now())
	wantLeases(t, "b takes a released partition at once", []subscription.Lease{lease(0, a[0].Epoch+1, 0)},
		mustAcquire(t, b, sub, "b", []int{0}, longTTL))
	wantLeases(t, "a wants none", nil, mustAcquire(t, b, sub, "a", nil, longTTL))
	wantStates(t, b, sub, "after a wants none", []pstate{
		{sub, 0, 0, "b", a[0].Epoch + 1}, {sub, 1, 0, "", a[1].Epoch}, {sub, 2, 0, "", a[2].Epoch},
	})
}

func testAcquireOrder[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 5, 0)
	mustAcquire(t, b, sub, "b", []int{1}, longTTL)
	// Taken one at a time, backwards, so that an answer in the order of
	// taking shows.
	var held []int
	for _, p := range []int{4, 3, 2, 0} {
		held = append([]int{p}, held...)
		for _, l := range mustAcquire(t, b, sub, "a", held, longTTL) {
			if l.Partition == p {
				mustCommit(t, b, sub, "a", subscription.Lease{Partition: p, Epoch: l.Epoch, Position: uint64(10 * (p + 1))})
			}
		}
	}
	e := epochs(t, b, sub)
	want := []subscription.Lease{lease(0, e[0], 10), lease(2, e[2], 30), lease(3, e[3], 40), lease(4, e[4], 50)}
	wantLeases(t, "a wants every partition, b holds 1", want, mustAcquire(t, b, sub, "a", []int{0, 1, 2, 3, 4}, longTTL))
}

func testAcquireMaxPartitions[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	const n = subscription.MaxPartitions
	mustRegister(t, b, sub, n, 0)
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	got := mustAcquire(t, b, sub, "a", all, longTTL)
	if len(got) != n {
		t.Fatalf("Acquire of %d partitions: %d leases", n, len(got))
	}
	cps := make([]subscription.Lease, n)
	for i, l := range got {
		if l.Partition != i {
			t.Fatalf("lease %d is of partition %d", i, l.Partition)
		}
		cps[i] = subscription.Lease{Partition: i, Epoch: l.Epoch, Position: uint64(i + 1)}
	}
	mustCommit(t, b, sub, "a", cps...)
	for i, p := range mustPartitions(t, b, sub) {
		if p.Position != uint64(i+1) {
			t.Fatalf("partition %d at %d after one Commit of %d checkpoints, want %d", i, p.Position, n, i+1)
		}
	}
	if got := mustAcquire(t, b, sub, "a", all[n/2:], longTTL); len(got) != n-n/2 {
		t.Errorf("Acquire of the second half: %d leases, want %d", len(got), n-n/2)
	}
}

// testAcquireConcurrent has members race for the same partitions with the
// same want: whatever the interleaving, at most one holds each partition.
func testAcquireConcurrent[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 4, 0)
	racingAcquires(t, sub, 4, []subscription.Backend[Tx]{b})
}

// racingAcquires runs members that Acquire every one of n partitions,
// spread over the handles, and checks that no partition had two holders.
func racingAcquires[Tx any](t *testing.T, name string, n int, handles []subscription.Backend[Tx]) {
	t.Helper()
	const members, rounds = 8, 5
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	holders := make([][]map[string]bool, members) // per goroutine, per partition: members seen holding it
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for m := range members {
		holders[m] = make([]map[string]bool, n)
		b := handles[m%len(handles)]
		member := fmt.Sprintf("m%d", m)
		g.Go(func() error {
			for range rounds {
				ls, err := b.Acquire(ctx, name, member, want, longTTL)
				if err != nil {
					return fmt.Errorf("acquire by %s: %w", member, err)
				}
				for _, l := range ls {
					if holders[m][l.Partition] == nil {
						holders[m][l.Partition] = make(map[string]bool)
					}
					holders[m][l.Partition][member] = true
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// Leases are long: a partition, once taken, never changes hands here.
	for p := range n {
		var got []string
		for m := range members {
			for member := range holders[m][p] {
				got = append(got, member)
			}
		}
		slices.Sort(got)
		if len(got) != 1 {
			t.Errorf("partition %d was held by %v, want exactly one member", p, got)
		}
	}
	for _, ps := range mustPartitions(t, handles[0], name) {
		if ps.Owner == "" {
			t.Errorf("partition %d has no owner after every member wanted it", ps.Partition)
		}
	}
}

func testAcquireUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	_, err := b.Acquire(ctxTimeout(t), "nosuch", "m", []int{0}, longTTL)
	wantErr(t, "Acquire of an unknown subscription", err, eventstore.ErrNotFound)
}

// Leave

func testLeaveReleases[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	mustHeartbeat(t, b, sub, "a", longTTL)
	mustHeartbeat(t, b, sub, "b", longTTL)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	bl := mustAcquire(t, b, sub, "b", []int{2}, longTTL)
	if err := b.Leave(ctxTimeout(t), sub, "a"); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	wantStates(t, b, sub, "after a left", []pstate{
		{sub, 0, 0, "", a[0].Epoch}, {sub, 1, 0, "", a[1].Epoch}, {sub, 2, 0, "b", bl[0].Epoch},
	})
	if diff := cmp.Diff([]string{"b"}, mustHeartbeat(t, b, sub, "b", longTTL)); diff != "" {
		t.Errorf("members after a left (-want +got):\n%s", diff)
	}
	got := mustAcquire(t, b, sub, "b", []int{0, 1, 2}, longTTL)
	want := []subscription.Lease{lease(0, a[0].Epoch+1, 0), lease(1, a[1].Epoch+1, 0), bl[0]}
	wantLeases(t, "b takes a's partitions at once", want, got)
}

func testLeaveUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	if err := b.Leave(ctxTimeout(t), "nosuch", "m"); err != nil {
		t.Errorf("Leave of an unknown subscription: %v, want nil", err)
	}
	mustRegister(t, b, sub, 1, 0)
	if err := b.Leave(ctxTimeout(t), sub, "nobody"); err != nil {
		t.Errorf("Leave of an unknown member: %v, want nil", err)
	}
}

// Commit

func testCommitMoves[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1, 2}, longTTL)
	lo := time.Now()
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 10},
		subscription.Lease{Partition: 2, Epoch: a[2].Epoch, Position: 30})
	hi := time.Now()
	ps := mustPartitions(t, b, sub)
	if diff := cmp.Diff([]pstate{{sub, 0, 10, "a", a[0].Epoch}, {sub, 1, 0, "a", a[1].Epoch}, {sub, 2, 30, "a", a[2].Epoch}}, states(ps)); diff != "" {
		t.Errorf("after Commit (-want +got):\n%s", diff)
	}
	checkTime(t, "partition 0 Updated", ps[0].Updated, lo, hi)
	checkTime(t, "partition 2 Updated", ps[2].Updated, lo, hi)
	mustCommit(t, b, sub, "a")
	wantLeases(t, "leases after Commit", []subscription.Lease{lease(0, a[0].Epoch, 10), lease(1, a[1].Epoch, 0), lease(2, a[2].Epoch, 30)},
		mustAcquire(t, b, sub, "a", []int{0, 1, 2}, longTTL))
}

func testCommitNeverBackwards[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 100)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 200})
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 150},
		subscription.Lease{Partition: 1, Epoch: a[1].Epoch, Position: 50})
	wantStates(t, b, sub, "after lower checkpoints", []pstate{{sub, 0, 200, "a", a[0].Epoch}, {sub, 1, 100, "a", a[1].Epoch}})
}

func testCommitWrongEpoch[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	for _, e := range []uint64{a[0].Epoch - 1, a[0].Epoch + 1} {
		err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: e, Position: 10}}, nil)
		wantErr(t, fmt.Sprintf("Commit under epoch %d of a lease at epoch %d", e, a[0].Epoch), err, subscription.ErrLeaseLost)
	}
	wantStates(t, b, sub, "after Commits under wrong epochs", []pstate{{sub, 0, 0, "a", a[0].Epoch}})
}

func testCommitWrongOwner[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	for _, member := range []string{"b", "A"} {
		err := b.Commit(ctxTimeout(t), sub, member, []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, nil)
		wantErr(t, fmt.Sprintf("Commit by %q of a's lease", member), err, subscription.ErrLeaseLost)
	}
	// A partition with no owner is no one's to commit.
	e := epochs(t, b, sub)
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 1, Epoch: e[1], Position: 10}}, nil)
	wantErr(t, "Commit of a partition with no owner", err, subscription.ErrLeaseLost)
	wantStates(t, b, sub, "after Commits by others", []pstate{{sub, 0, 0, "a", a[0].Epoch}, {sub, 1, 0, "", e[1]}})
}

func testCommitAllOrNothing[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 2}, longTTL)
	bl := mustAcquire(t, b, sub, "b", []int{1}, longTTL)
	calls := &txCalls[Tx]{t: t}
	// The lost checkpoint comes between two good ones, so that a backend
	// writing them one by one is caught whichever way it stops.
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{
		{Partition: 0, Epoch: a[0].Epoch, Position: 10},
		{Partition: 1, Epoch: bl[0].Epoch, Position: 10},
		{Partition: 2, Epoch: a[1].Epoch, Position: 10},
	}, calls.fn)
	wantErr(t, "Commit with one checkpoint of another member's partition", err, subscription.ErrLeaseLost)
	calls.wantCalls("Commit", 1)
	wantStates(t, b, sub, "after a Commit that lost a lease", []pstate{
		{sub, 0, 0, "a", a[0].Epoch}, {sub, 1, 0, "b", bl[0].Epoch}, {sub, 2, 0, "a", a[1].Epoch},
	})
}

func testCommitAfterLeaseEnded[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, shortTTL)
	newProbe(t, b, sub).wait(t, b)
	if err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, nil); err != nil {
		t.Errorf("Commit after the lease ended, no one having taken it: %v, want nil", err)
	}
	wantStates(t, b, sub, "after Commit", []pstate{{sub, 0, 10, "a", a[0].Epoch}})
}

func testCommitRunsFn[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	calls := &txCalls[Tx]{t: t}
	if err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, calls.fn); err != nil {
		t.Fatalf("Commit with fn: %v", err)
	}
	calls.wantCalls("Commit", 1)
	if err := b.Commit(ctxTimeout(t), sub, "a", nil, calls.fn); err != nil {
		t.Fatalf("Commit with fn and no checkpoint: %v", err)
	}
	calls.wantCalls("Commit with no checkpoint", 2)
	wantStates(t, b, sub, "after Commit", []pstate{{sub, 0, 10, "a", a[0].Epoch}})
}

func testCommitFnErrorAsIs[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	calls := &txCalls[Tx]{t: t, err: &handlerError{"handler failed"}}
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, calls.fn)
	wantSameError(t, "Commit whose fn fails", err, calls.err)
	calls.wantCalls("Commit", 1)
}

func testCommitFnErrorRollsBack[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	calls := &txCalls[Tx]{t: t, err: errors.New("handler failed")}
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{
		{Partition: 0, Epoch: a[0].Epoch, Position: 10}, {Partition: 1, Epoch: a[1].Epoch, Position: 10},
	}, calls.fn)
	if !errors.Is(err, calls.err) {
		t.Errorf("Commit whose fn fails: %v, want fn's error", err)
	}
	wantStates(t, b, sub, "after a Commit whose fn failed", []pstate{{sub, 0, 0, "a", a[0].Epoch}, {sub, 1, 0, "a", a[1].Epoch}})
}

func testCommitAfterDelete[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	a := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	if err := b.Delete(ctxTimeout(t), sub); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// ErrLeaseLost's doc names a deleted subscription among its causes;
	// the subscription loop hands the partition on when it sees it.
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, nil)
	wantErr(t, "Commit after Delete", err, subscription.ErrLeaseLost)
	if got := mustPartitions(t, b, sub); len(got) != 0 {
		t.Errorf("the Commit after Delete left partitions: %+v", got)
	}
}

// Park and Parked

var parkTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func parked(pos uint64, errText string, attempts int) subscription.Parked {
	return subscription.Parked{
		Position: pos,
		StreamID: fmt.Sprintf("stream-%d", pos),
		Version:  pos + 1,
		Type:     "OrderPlaced",
		EventID:  fmt.Sprintf("id-%d", pos),
		Error:    errText,
		Attempts: attempts,
		// Whole seconds: the stored precision is the backend's.
		Time: parkTime.Add(time.Duration(pos%1_000_000) * time.Second), // whole seconds, within time.Duration for any position
	}
}

func mustPark[Tx any](t *testing.T, b subscription.Backend[Tx], name string, ps ...subscription.Parked) {
	t.Helper()
	for _, p := range ps {
		if err := b.Park(ctxTimeout(t), name, p); err != nil {
			t.Fatalf("Park(%q, %d): %v", name, p.Position, err)
		}
	}
}

func wantParked[Tx any](t *testing.T, b subscription.Backend[Tx], name, what string, want []subscription.Parked) {
	t.Helper()
	if diff := cmp.Diff(want, mustParked(t, b, name), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: parked events of %q (-want +got):\n%s", what, name, diff)
	}
}

func testParkReplaces[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "first", 1), parked(20, "other", 1))
	second := parked(10, "second", 4)
	second.Time = second.Time.Add(time.Hour)
	mustPark(t, b, sub, second)
	wantParked(t, b, sub, "after parking position 10 again", []subscription.Parked{second, parked(20, "other", 1)})
}

func testParkUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	err := b.Park(ctxTimeout(t), "nosuch", parked(1, "x", 1))
	wantErr(t, "Park in an unknown subscription", err, eventstore.ErrNotFound)
}

func testParkedOrder[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	wantParked(t, b, sub, "before any Park", nil)
	mustPark(t, b, sub, parked(30, "c", 1), parked(10, "a", 2), parked(1<<40, "big", 3), parked(20, "b", 3))
	wantParked(t, b, sub, "in position order", []subscription.Parked{
		parked(10, "a", 2), parked(20, "b", 3), parked(30, "c", 1), parked(1<<40, "big", 3),
	})
}

func testParkedPerSubscription[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, "one", 1, 0)
	mustRegister(t, b, "two", 1, 0)
	mustPark(t, b, "one", parked(10, "one's", 1))
	mustPark(t, b, "two", parked(10, "two's", 1), parked(20, "two's", 1))
	wantParked(t, b, "one", "one", []subscription.Parked{parked(10, "one's", 1)})
	wantParked(t, b, "two", "two", []subscription.Parked{parked(10, "two's", 1), parked(20, "two's", 1)})
	if err := b.Unpark(ctxTimeout(t), "two", 10, nil); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	wantParked(t, b, "one", "one after Unpark of two's", []subscription.Parked{parked(10, "one's", 1)})
}

func testParkedUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	_, err := b.Parked(ctxTimeout(t), "nosuch")
	wantErr(t, "Parked of an unknown subscription", err, eventstore.ErrNotFound)
}

// RequestReplay and ReplayRequests

// mustRequestReplay requests the replay of name's parked event at position
// (all for 0), checks that want were marked, and returns the times between
// which the request was made.
func mustRequestReplay[Tx any](t *testing.T, b subscription.Backend[Tx], name string, position uint64, want int) (lo, hi time.Time) {
	t.Helper()
	lo = time.Now()
	n, err := b.RequestReplay(ctxTimeout(t), name, position)
	hi = time.Now()
	if err != nil {
		t.Fatalf("RequestReplay(%q, %d): %v", name, position, err)
	}
	if n != want {
		t.Errorf("RequestReplay(%q, %d) marked %d, want %d", name, position, n, want)
	}
	return lo, hi
}

// requested returns the positions of ps whose replay is requested, and
// checks that each request was made in [lo, hi].
func requested(t *testing.T, ps []subscription.Parked, lo, hi time.Time) []uint64 {
	t.Helper()
	var out []uint64
	for _, p := range ps {
		if p.ReplayRequested.IsZero() {
			continue
		}
		checkTime(t, fmt.Sprintf("position %d ReplayRequested", p.Position), p.ReplayRequested, lo, hi)
		out = append(out, p.Position)
	}
	return out
}

func mustReplayRequests[Tx any](t *testing.T, b subscription.Backend[Tx], name string) []subscription.Parked {
	t.Helper()
	ps, err := b.ReplayRequests(ctxTimeout(t), name)
	if err != nil {
		t.Fatalf("ReplayRequests(%q): %v", name, err)
	}
	return ps
}

func testParkClearsRequest[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "first", 1), parked(20, "other", 1))
	mustRequestReplay(t, b, sub, 0, 2)
	again := parked(10, "replay failed", 2)
	mustPark(t, b, sub, again)
	ps := mustParked(t, b, sub)
	if len(ps) != 2 || ps[0].Error != "replay failed" || !ps[0].ReplayRequested.IsZero() || ps[1].ReplayRequested.IsZero() {
		t.Errorf("after parking position 10 again with no request: %+v, want 10's request cleared (and its error replaced), 20's kept", ps)
	}
	if got := mustReplayRequests(t, b, sub); len(got) != 1 || got[0].Position != 20 {
		t.Errorf("ReplayRequests after parking position 10 again: %+v, want position 20 only", got)
	}
}

func testRequestReplayOne[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustRegister(t, b, "other", 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1), parked(20, "b", 1), parked(30, "c", 1))
	mustPark(t, b, "other", parked(20, "b", 1))
	wantParked(t, b, sub, "before any request", []subscription.Parked{parked(10, "a", 1), parked(20, "b", 1), parked(30, "c", 1)})
	lo, hi := mustRequestReplay(t, b, sub, 20, 1)
	ps := mustParked(t, b, sub)
	if diff := cmp.Diff([]uint64{20}, requested(t, ps, lo, hi)); diff != "" {
		t.Errorf("positions requested after RequestReplay of 20 (-want +got):\n%s", diff)
	}
	for i := range ps {
		ps[i].ReplayRequested = time.Time{}
	}
	if diff := cmp.Diff([]subscription.Parked{parked(10, "a", 1), parked(20, "b", 1), parked(30, "c", 1)}, ps); diff != "" {
		t.Errorf("RequestReplay changed more than the request (-want +got):\n%s", diff)
	}
	wantParked(t, b, "other", "another subscription's event at the same position", []subscription.Parked{parked(20, "b", 1)})
	// Requested again: marked again, and still once.
	mustRequestReplay(t, b, sub, 20, 1)
	if got := requested(t, mustParked(t, b, sub), lo, time.Now()); !slices.Equal(got, []uint64{20}) {
		t.Errorf("positions requested after a second request of 20: %v, want [20]", got)
	}
}

func testRequestReplayAll[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustRequestReplay(t, b, sub, 0, 0) // none parked: no error
	mustPark(t, b, sub, parked(30, "c", 1), parked(10, "a", 1), parked(1<<40, "big", 1))
	lo, hi := mustRequestReplay(t, b, sub, 0, 3)
	if diff := cmp.Diff([]uint64{10, 30, 1 << 40}, requested(t, mustParked(t, b, sub), lo, hi)); diff != "" {
		t.Errorf("positions requested after RequestReplay of all (-want +got):\n%s", diff)
	}
}

func testRequestReplayNotFound[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1))
	for _, pos := range []uint64{11, 1 << 63, math.MaxUint64} {
		n, err := b.RequestReplay(ctxTimeout(t), sub, pos)
		wantErr(t, fmt.Sprintf("RequestReplay of position %d, not parked", pos), err, eventstore.ErrNotFound)
		if n != 0 {
			t.Errorf("RequestReplay of position %d, not parked: marked %d", pos, n)
		}
	}
	for _, pos := range []uint64{0, 10} {
		_, err := b.RequestReplay(ctxTimeout(t), "nosuch", pos)
		wantErr(t, fmt.Sprintf("RequestReplay(%d) in an unknown subscription", pos), err, eventstore.ErrNotFound)
	}
	wantParked(t, b, sub, "after failed requests", []subscription.Parked{parked(10, "a", 1)})
	if got := mustReplayRequests(t, b, sub); len(got) != 0 {
		t.Errorf("ReplayRequests after failed requests: %+v, want none", got)
	}
}

func testReplayRequestsOnly[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	if got := mustReplayRequests(t, b, sub); len(got) != 0 {
		t.Errorf("ReplayRequests with nothing parked: %+v, want none", got)
	}
	mustPark(t, b, sub, parked(40, "d", 1), parked(30, "c", 1), parked(20, "b", 1), parked(10, "a", 1))
	if got := mustReplayRequests(t, b, sub); len(got) != 0 {
		t.Errorf("ReplayRequests with none requested: %+v, want none", got)
	}
	lo := time.Now()
	mustRequestReplay(t, b, sub, 40, 1)
	mustRequestReplay(t, b, sub, 10, 1)
	mustRequestReplay(t, b, sub, 30, 1)
	hi := time.Now()
	got := mustReplayRequests(t, b, sub)
	if diff := cmp.Diff([]uint64{10, 30, 40}, requested(t, got, lo, hi)); diff != "" {
		t.Errorf("ReplayRequests: requested positions (-want +got):\n%s", diff)
	}
	if len(got) > 0 {
		want := parked(10, "a", 1)
		g := got[0]
		g.ReplayRequested = time.Time{}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("ReplayRequests' first event (-want +got):\n%s", diff)
		}
	}
}

func testReplayRequestsUnpark[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1), parked(20, "b", 1))
	mustRequestReplay(t, b, sub, 0, 2)
	if err := b.Unpark(ctxTimeout(t), sub, 10, nil); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	if got := mustReplayRequests(t, b, sub); len(got) != 1 || got[0].Position != 20 {
		t.Errorf("ReplayRequests after Unpark of 10: %+v, want position 20 only", got)
	}
}

// requestedOne parks the event at position 10, requests its replay, and
// returns it as ReplayRequests does.
func requestedOne[Tx any](t *testing.T, b subscription.Backend[Tx]) subscription.Parked {
	t.Helper()
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1), parked(20, "b", 1))
	mustRequestReplay(t, b, sub, 10, 1)
	reqs := mustReplayRequests(t, b, sub)
	if len(reqs) != 1 || reqs[0].Position != 10 {
		t.Fatalf("ReplayRequests: %+v, want position 10", reqs)
	}
	return reqs[0]
}

func mustClearReplay[Tx any](t *testing.T, b subscription.Backend[Tx], p subscription.Parked, want bool) {
	t.Helper()
	got, err := b.ClearReplay(ctxTimeout(t), sub, p)
	if err != nil {
		t.Fatalf("ClearReplay(%d): %v", p.Position, err)
	}
	if got != want {
		t.Errorf("ClearReplay(%d) reported %v, want %v", p.Position, got, want)
	}
}

func testClearReplayUpdates[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	p := requestedOne(t, b)
	p.Error, p.Attempts, p.Time = "failed again", 2, p.Time.Add(time.Hour)
	mustClearReplay(t, b, p, true)
	want := parked(10, "failed again", 2)
	want.Time = want.Time.Add(time.Hour)
	wantParked(t, b, sub, "after ClearReplay", []subscription.Parked{want, parked(20, "b", 1)})
	if got := mustReplayRequests(t, b, sub); len(got) != 0 {
		t.Errorf("ReplayRequests after ClearReplay: %+v, want none", got)
	}
	// Cleared already: nothing more to do.
	p.Error = "a third time"
	mustClearReplay(t, b, p, false)
	wantParked(t, b, sub, "after a second ClearReplay", []subscription.Parked{want, parked(20, "b", 1)})
}

func testClearReplayKeepsNewer[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	p := requestedOne(t, b)
	// The clock must move past the first request's time, at the stored
	// precision, for the second to differ from it.
	for deadline := time.Now().Add(time.Second); time.Now().Before(p.ReplayRequested.Add(10*time.Millisecond)) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	mustRequestReplay(t, b, sub, 10, 1)
	p.Error, p.Attempts = "failed again", 2
	mustClearReplay(t, b, p, false)
	ps := mustParked(t, b, sub)
	if len(ps) != 2 || ps[0].Error != "a" || ps[0].ReplayRequested.IsZero() || !ps[0].ReplayRequested.After(p.ReplayRequested) {
		t.Errorf("after ClearReplay of an older request: %+v, want position 10 unchanged, with the newer request (after %v)", ps, p.ReplayRequested)
	}
}

func testClearReplayDiscarded[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	p := requestedOne(t, b)
	if err := b.Unpark(ctxTimeout(t), sub, 10, nil); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	p.Error = "failed again"
	mustClearReplay(t, b, p, false)
	wantParked(t, b, sub, "after ClearReplay of a discarded event", []subscription.Parked{parked(20, "b", 1)})
}

func testClearReplayUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	p := parked(10, "a", 1)
	p.ReplayRequested = parkTime
	_, err := b.ClearReplay(ctxTimeout(t), "nosuch", p)
	wantErr(t, "ClearReplay in an unknown subscription", err, eventstore.ErrNotFound)
}

func testReplayRequestsUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	_, err := b.ReplayRequests(ctxTimeout(t), "nosuch")
	wantErr(t, "ReplayRequests of an unknown subscription", err, eventstore.ErrNotFound)
}

// Unpark

func testUnparkDeletes[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1), parked(20, "b", 1))
	calls := &txCalls[Tx]{t: t}
	if err := b.Unpark(ctxTimeout(t), sub, 10, calls.fn); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	calls.wantCalls("Unpark", 1)
	wantParked(t, b, sub, "after Unpark", []subscription.Parked{parked(20, "b", 1)})
}

func testUnparkNilFn[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1))
	if err := b.Unpark(ctxTimeout(t), sub, 10, nil); err != nil {
		t.Fatalf("Unpark with nil fn: %v", err)
	}
	wantParked(t, b, sub, "after Unpark", nil)
}

func testUnparkNotFound[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1))
	err := b.Unpark(ctxTimeout(t), sub, 11, nil)
	wantErr(t, "Unpark of a position with no parked event", err, eventstore.ErrNotFound)
	if err := b.Unpark(ctxTimeout(t), sub, 10, nil); err != nil {
		t.Fatalf("Unpark: %v", err)
	}
	err = b.Unpark(ctxTimeout(t), sub, 10, nil)
	wantErr(t, "Unpark again", err, eventstore.ErrNotFound)
	err = b.Unpark(ctxTimeout(t), "nosuch", 10, nil)
	wantErr(t, "Unpark in an unknown subscription", err, eventstore.ErrNotFound)
}

func testUnparkFnError[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(10, "a", 1))
	calls := &txCalls[Tx]{t: t, err: &handlerError{"replay failed"}}
	err := b.Unpark(ctxTimeout(t), sub, 10, calls.fn)
	wantSameError(t, "Unpark whose fn fails", err, calls.err)
	calls.wantCalls("Unpark", 1)
	wantParked(t, b, sub, "after an Unpark whose fn failed", []subscription.Parked{parked(10, "a", 1)})
}

// Partitions

func testPartitionsOne[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, "b", 2, 5)
	mustRegister(t, b, "a", 3, 1)
	wantNewStates(t, b, "b", "one subscription", []pstate{{"b", 0, 5, "", 0}, {"b", 1, 5, "", 0}})
}

func testPartitionsAll[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	// Registered out of order, and with more partitions than 10 so that
	// partition 10 sorting before 2 shows. Names sort as Go sorts strings,
	// by bytes ("B" before "a"), whatever the database's collation.
	mustRegister(t, b, "b", 12, 0)
	mustRegister(t, b, "a", 1, 0)
	mustRegister(t, b, "c", 1, 0)
	mustRegister(t, b, "B", 1, 0)
	want := []pstate{{"B", 0, 0, "", 0}, {"a", 0, 0, "", 0}}
	for i := range 12 {
		want = append(want, pstate{"b", i, 0, "", 0})
	}
	want = append(want, pstate{"c", 0, 0, "", 0})
	wantNewStates(t, b, "", "every subscription, by name and partition", want)
}

func testPartitionsUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	if got := mustPartitions(t, b, ""); len(got) != 0 {
		t.Errorf("Partitions of an empty backend: %+v, want none", got)
	}
	mustRegister(t, b, sub, 1, 0)
	if got := mustPartitions(t, b, "nosuch"); len(got) != 0 {
		t.Errorf("Partitions of an unknown subscription: %+v, want none", got)
	}
}

// Reset

func testResetPositions[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 50},
		subscription.Lease{Partition: 1, Epoch: a[1].Epoch, Position: 5})
	lo := time.Now()
	if err := b.Reset(ctxTimeout(t), sub, 20); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	hi := time.Now()
	ps := mustPartitions(t, b, sub)
	for _, p := range ps {
		if p.Position != 20 || p.Owner != "" || !p.LeaseUntil.IsZero() {
			t.Errorf("partition %d after Reset to 20: position %d, owner %q, lease until %v; want 20, none, zero",
				p.Partition, p.Position, p.Owner, p.LeaseUntil)
		}
		checkTime(t, fmt.Sprintf("partition %d Updated", p.Partition), p.Updated, lo, hi)
	}
	got := mustAcquire(t, b, sub, "b", []int{0, 1, 2}, longTTL)
	for _, l := range got {
		if l.Position != 20 {
			t.Errorf("lease of partition %d after Reset: position %d, want 20", l.Partition, l.Position)
		}
	}
	if len(got) != 3 {
		t.Errorf("b took %d partitions after Reset, want all 3: %+v", len(got), got)
	}
}

func testResetEpochs[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 3, 0)
	mustAcquire(t, b, sub, "a", []int{1}, longTTL)
	before := epochs(t, b, sub)
	if err := b.Reset(ctxTimeout(t), sub, 0); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	after := epochs(t, b, sub)
	for i := range before {
		if after[i] <= before[i] {
			t.Errorf("partition %d: epoch %d after Reset, was %d; want it grown", i, after[i], before[i])
		}
	}
}

func testResetOldHolder[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	a := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	if err := b.Reset(ctxTimeout(t), sub, 3); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	err := b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: a[0].Epoch, Position: 10}}, nil)
	wantErr(t, "the old holder's Commit after Reset", err, subscription.ErrLeaseLost)
	// Taking the partitions again does not revive the old leases.
	again := mustAcquire(t, b, sub, "a", []int{0, 1}, longTTL)
	for i, l := range again {
		if l.Epoch == a[i].Epoch {
			t.Errorf("partition %d: epoch %d after Reset and Acquire, the same as before Reset", l.Partition, l.Epoch)
		}
	}
	err = b.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 1, Epoch: a[1].Epoch, Position: 10}}, nil)
	wantErr(t, "a Commit under the epoch before Reset, after a new Acquire", err, subscription.ErrLeaseLost)
	wantStates(t, b, sub, "after the lost Commits", []pstate{{sub, 0, 3, "a", again[0].Epoch}, {sub, 1, 3, "a", again[1].Epoch}})
}

func testResetUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	err := b.Reset(ctxTimeout(t), "nosuch", 0)
	wantErr(t, "Reset of an unknown subscription", err, eventstore.ErrNotFound)
}

// Delete

func testDeleteEverything[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, sub, 2, 0)
	mustHeartbeat(t, b, sub, "old", longTTL)
	a := mustAcquire(t, b, sub, "old", []int{0, 1}, longTTL)
	mustCommit(t, b, sub, "old", subscription.Lease{Partition: 0, Epoch: a[0].Epoch, Position: 10})
	mustPark(t, b, sub, parked(5, "x", 1))
	if err := b.Delete(ctxTimeout(t), sub); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := mustPartitions(t, b, sub); len(got) != 0 {
		t.Errorf("Partitions after Delete: %+v, want none", got)
	}
	if got := mustPartitions(t, b, ""); len(got) != 0 {
		t.Errorf("Partitions of every subscription after Delete: %+v, want none", got)
	}
	_, err := b.Parked(ctxTimeout(t), sub)
	wantErr(t, "Parked after Delete", err, eventstore.ErrNotFound)
	_, err = b.Heartbeat(ctxTimeout(t), sub, "new", longTTL)
	wantErr(t, "Heartbeat after Delete", err, eventstore.ErrNotFound)
	err = b.Delete(ctxTimeout(t), sub)
	wantErr(t, "Delete again", err, eventstore.ErrNotFound)

	// A new subscription of the same name starts afresh.
	mustRegister(t, b, sub, 3, 7)
	wantNewStates(t, b, sub, "registered again", []pstate{{sub, 0, 7, "", 0}, {sub, 1, 7, "", 0}, {sub, 2, 7, "", 0}})
	wantParked(t, b, sub, "registered again", nil)
	if diff := cmp.Diff([]string{"new"}, mustHeartbeat(t, b, sub, "new", longTTL)); diff != "" {
		t.Errorf("members of the subscription registered again (-want +got):\n%s", diff)
	}
	if got := mustAcquire(t, b, sub, "new", []int{0, 1, 2}, longTTL); len(got) != 3 {
		t.Errorf("Acquire in the subscription registered again: %+v, want 3 leases", got)
	}
}

func testDeleteOthers[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	mustRegister(t, b, "gone", 1, 0)
	mustRegister(t, b, "kept", 2, 4)
	mustPark(t, b, "gone", parked(5, "x", 1))
	mustPark(t, b, "kept", parked(5, "y", 1))
	mustHeartbeat(t, b, "kept", "m", longTTL)
	k := mustAcquire(t, b, "kept", "m", []int{1}, longTTL)
	if err := b.Delete(ctxTimeout(t), "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantStates(t, b, "", "after deleting another subscription", []pstate{{"kept", 0, 4, "", epochs(t, b, "kept")[0]}, {"kept", 1, 4, "m", k[0].Epoch}})
	wantParked(t, b, "kept", "after deleting another subscription", []subscription.Parked{parked(5, "y", 1)})
	if diff := cmp.Diff([]string{"m", "n"}, mustHeartbeat(t, b, "kept", "n", longTTL)); diff != "" {
		t.Errorf("members after deleting another subscription (-want +got):\n%s", diff)
	}
}

func testDeleteUnknown[Tx any](t *testing.T, b subscription.Backend[Tx]) {
	err := b.Delete(ctxTimeout(t), "nosuch")
	wantErr(t, "Delete of an unknown subscription", err, eventstore.ErrNotFound)
}

// Shared: two handles on one database.

func testSharedLeases[Tx any](t *testing.T, a, b subscription.Backend[Tx]) {
	mustRegister(t, a, sub, 2, 0)
	if n, err := b.Register(ctxTimeout(t), sub, 5, 0); err != nil || n != 2 {
		t.Fatalf("Register through the other handle: %d, %v; want the stored 2", n, err)
	}
	la := mustAcquire(t, a, sub, "a", []int{0, 1}, longTTL)
	wantLeases(t, "b wants a's partitions through the other handle", nil, mustAcquire(t, b, sub, "b", []int{0, 1}, longTTL))
	// A member may commit through either handle: the lease is the database's.
	mustCommit(t, b, sub, "a", subscription.Lease{Partition: 0, Epoch: la[0].Epoch, Position: 10})
	wantStates(t, a, sub, "through the first handle", []pstate{{sub, 0, 10, "a", la[0].Epoch}, {sub, 1, 0, "a", la[1].Epoch}})
}

func testSharedReset[Tx any](t *testing.T, a, b subscription.Backend[Tx]) {
	mustRegister(t, a, sub, 1, 0)
	la := mustAcquire(t, a, sub, "a", []int{0}, longTTL)
	if err := b.Reset(ctxTimeout(t), sub, 0); err != nil {
		t.Fatalf("Reset through the other handle: %v", err)
	}
	err := a.Commit(ctxTimeout(t), sub, "a", []subscription.Lease{{Partition: 0, Epoch: la[0].Epoch, Position: 10}}, nil)
	wantErr(t, "Commit after a Reset through the other handle", err, subscription.ErrLeaseLost)
	if err := b.Delete(ctxTimeout(t), sub); err != nil {
		t.Fatalf("Delete through the other handle: %v", err)
	}
	_, err = a.Parked(ctxTimeout(t), sub)
	wantErr(t, "Parked after a Delete through the other handle", err, eventstore.ErrNotFound)
}

func testSharedMembers[Tx any](t *testing.T, a, b subscription.Backend[Tx]) {
	mustRegister(t, a, sub, 1, 0)
	mustHeartbeat(t, a, sub, "a", longTTL)
	if diff := cmp.Diff([]string{"a", "b"}, mustHeartbeat(t, b, sub, "b", longTTL)); diff != "" {
		t.Errorf("members through the other handle (-want +got):\n%s", diff)
	}
	mustPark(t, b, sub, parked(3, "x", 1))
	wantParked(t, a, sub, "parked through the other handle", []subscription.Parked{parked(3, "x", 1)})
}

func testSharedConcurrent[Tx any](t *testing.T, a, b subscription.Backend[Tx]) {
	mustRegister(t, a, sub, 4, 0)
	racingAcquires(t, sub, 4, []subscription.Backend[Tx]{a, b})
}

// Close

func testCloseEveryMethod[Tx any](t *testing.T, b subscription.Backend[Tx], closeFn func() error) {
	mustRegister(t, b, sub, 1, 0)
	mustPark(t, b, sub, parked(1, "x", 1))
	ls := mustAcquire(t, b, sub, "a", []int{0}, longTTL)
	if err := closeFn(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := ctxTimeout(t)
	calls := &txCalls[Tx]{t: t}
	checks := []struct {
		method string
		call   func() error
	}{
		{"Register", func() error { _, err := b.Register(ctx, sub, 1, 0); return err }},
		{"Heartbeat", func() error { _, err := b.Heartbeat(ctx, sub, "a", longTTL); return err }},
		{"Acquire", func() error { _, err := b.Acquire(ctx, sub, "a", []int{0}, longTTL); return err }},
		{"Leave", func() error { return b.Leave(ctx, sub, "a") }},
		{"Commit", func() error { return b.Commit(ctx, sub, "a", ls, calls.fn) }},
		{"Park", func() error { return b.Park(ctx, sub, parked(2, "y", 1)) }},
		{"Parked", func() error { _, err := b.Parked(ctx, sub); return err }},
		{"Unpark", func() error { return b.Unpark(ctx, sub, 1, calls.fn) }},
		{"RequestReplay", func() error { _, err := b.RequestReplay(ctx, sub, 0); return err }},
		{"ReplayRequests", func() error { _, err := b.ReplayRequests(ctx, sub); return err }},
		{"ClearReplay", func() error { _, err := b.ClearReplay(ctx, sub, parked(1, "x", 1)); return err }},
		{"Partitions", func() error { _, err := b.Partitions(ctx, ""); return err }},
		{"Reset", func() error { return b.Reset(ctx, sub, 0) }},
		{"Delete", func() error { return b.Delete(ctx, sub) }},
	}
	for _, c := range checks {
		wantErr(t, c.method+" after close", c.call(), eventstore.ErrClosed)
	}
	calls.wantCalls("Commit and Unpark after close", 0)
}
