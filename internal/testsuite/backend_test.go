package testsuite_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/internal/membackend"
	"github.com/esv2/esv2/internal/testsuite"
	"github.com/esv2/esv2/subscription"
)

// backendMutantEnv names the fault TestBackendConformance switches on in
// the child processes of TestBackendSuiteCatchesMutants.
const backendMutantEnv = "ESV2_BACKENDSUITE_MUTANT"

// backendMutants are membackend's deliberate faults, each with a subtest
// that must fail with it. All are caught at once by what the fault makes
// the backend answer, except heartbeatKeepsExpired, whose symptom is a
// member that never goes (a wait that times out), and acquireRace, which
// needs the racing goroutines to interleave (a millisecond's window,
// opened on every take, makes that all but certain).
var backendMutants = map[string]struct {
	faults membackend.Faults
	fails  string
}{
	"registerOverwrites":    {membackend.Faults{RegisterOverwrites: true}, "Backend/Register/Existing"},
	"registerForgetsEpochs": {membackend.Faults{RegisterForgetsEpochs: true}, "Backend/Register/AfterDeleteNewEpochs"},
	"heartbeatKeepsExpired": {membackend.Faults{HeartbeatKeepsExpired: true}, "Backend/Heartbeat/ForgetsExpired"},
	"heartbeatUnsorted":     {membackend.Faults{HeartbeatUnsorted: true}, "Backend/Heartbeat/LiveMembersSorted"},
	"acquireStealsLive":     {membackend.Faults{AcquireStealsLive: true}, "Backend/Acquire/NotLiveOfOther"},
	"acquireStealsLiveRace": {membackend.Faults{AcquireStealsLive: true}, "Backend/Acquire/Concurrent"},
	"acquireKeepsEpoch":     {membackend.Faults{AcquireKeepsEpoch: true}, "Backend/Acquire/TakesExpired"},
	"acquireBumpsOwn":       {membackend.Faults{AcquireBumpsOwn: true}, "Backend/Acquire/ExtendsOwn"},
	"acquireBumpsOwnEnded":  {membackend.Faults{AcquireBumpsOwn: true}, "Backend/Acquire/ExtendsOwnEnded"},
	"acquireKeepsUnwanted":  {membackend.Faults{AcquireKeepsUnwanted: true}, "Backend/Acquire/ReleasesUnwanted"},
	"acquireUnordered":      {membackend.Faults{AcquireUnordered: true}, "Backend/Acquire/Order"},
	"acquireRace":           {membackend.Faults{AcquireRace: true}, "Backend/Acquire/Concurrent"},
	"leaveKeepsPartitions":  {membackend.Faults{LeaveKeepsPartitions: true}, "Backend/Leave/ReleasesAndForgets"},
	"commitIgnoresEpoch":    {membackend.Faults{CommitIgnoresEpoch: true}, "Backend/Commit/WrongEpoch"},
	"commitIgnoresOwner":    {membackend.Faults{CommitIgnoresOwner: true}, "Backend/Commit/WrongOwner"},
	"commitPartial":         {membackend.Faults{CommitPartial: true}, "Backend/Commit/LostLeaseCommitsNothing"},
	"commitBackwards":       {membackend.Faults{CommitBackwards: true}, "Backend/Commit/NeverBackwards"},
	"commitWrapsFnError":    {membackend.Faults{CommitWrapsFnError: true}, "Backend/Commit/HandlerErrorAsIs"},
	"commitFnErrorCommits":  {membackend.Faults{CommitFnErrorCommits: true}, "Backend/Commit/HandlerErrorRollsBack"},
	"parkAppends":           {membackend.Faults{ParkAppends: true}, "Backend/Park/Replaces"},
	"parkedUnordered":       {membackend.Faults{ParkedUnordered: true}, "Backend/Parked/Order"},
	"unparkIgnoresFnError":  {membackend.Faults{UnparkIgnoresFnError: true}, "Backend/Unpark/HandlerErrorKeepsRow"},
	"unparkMissingOK":       {membackend.Faults{UnparkMissingOK: true}, "Backend/Unpark/NotFound"},
	"replayMarksAll":        {membackend.Faults{ReplayMarksAll: true}, "Backend/RequestReplay/MarksOne"},
	"replayMissingOK":       {membackend.Faults{ReplayMissingOK: true}, "Backend/RequestReplay/NotFound"},
	"replayRequestsAll":     {membackend.Faults{ReplayRequestsAll: true}, "Backend/ReplayRequests/OnlyRequestedInOrder"},
	"parkKeepsRequest":      {membackend.Faults{ParkKeepsRequest: true}, "Backend/Park/ClearsReplayRequest"},
	"clearReplayNewer":      {membackend.Faults{ClearReplayAny: true}, "Backend/ClearReplay/KeepsNewerRequest"},
	"clearReplayDiscarded":  {membackend.Faults{ClearReplayAny: true}, "Backend/ClearReplay/DiscardedStaysGone"},
	"partitionsUnordered":   {membackend.Faults{PartitionsUnordered: true}, "Backend/Partitions/AllOrdered"},
	"resetKeepsEpochs":      {membackend.Faults{ResetKeepsEpochs: true}, "Backend/Reset/GrowsEpochs"},
	"resetKeepsOwners":      {membackend.Faults{ResetKeepsOwners: true}, "Backend/Reset/OldHolderLosesLease"},
	"deleteKeepsParked":     {membackend.Faults{DeleteKeepsParked: true}, "Backend/Delete/RemovesEverything"},
	"deleteKeepsMembers":    {membackend.Faults{DeleteKeepsMembers: true}, "Backend/Delete/RemovesEverything"},
	"closedIgnored":         {membackend.Faults{ClosedIgnored: true}, "Backend/Close/EveryMethod"},
	"sharedStealsLive":      {membackend.Faults{AcquireStealsLive: true}, "Backend/Shared/LeasesAcrossHandles"},
}

// TestBackendConformance runs the backend suite on membackend: the
// reference passes it.
func TestBackendConformance(t *testing.T) {
	var f membackend.Faults
	if name := os.Getenv(backendMutantEnv); name != "" {
		m, ok := backendMutants[name]
		if !ok {
			t.Fatalf("unknown backend mutant %q", name)
		}
		f = m.faults
		// heartbeatKeepsExpired fails by a wait that times out: keep it short.
		t.Cleanup(testsuite.SetWaitTimeout(2 * time.Second))
	}
	// Tx is an int, 1 in every transaction: the suite wants a Tx that is
	// not the zero value.
	newTx := func() int { return 1 }
	open := func(t *testing.T) *membackend.Backend[int] {
		b := membackend.NewFaulty(newTx, f)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}
	testsuite.RunBackendFeatures(t, func(t *testing.T) subscription.Backend[int] { return open(t) }, testsuite.BackendFeatures[int]{
		NewPair: func(t *testing.T) (subscription.Backend[int], subscription.Backend[int]) {
			a := open(t)
			b := a.Open()
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return a, b
		},
		NewClosing: func(t *testing.T) (subscription.Backend[int], func() error) {
			b := open(t)
			return b, b.Close
		},
	})
}

// TestBackendSuiteCatchesMutants runs the backend suite on membackend
// with each of its faults, in child processes, and checks that each fault
// fails the subtest meant to catch it.
func TestBackendSuiteCatchesMutants(t *testing.T) {
	if os.Getenv(backendMutantEnv) != "" || os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	if testing.Short() {
		t.Skip("runs the suite once per mutant")
	}
	for name, m := range backendMutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run := "^TestBackendConformance$"
			for _, part := range strings.Split(m.fails, "/") {
				run += "/^" + regexp.QuoteMeta(part) + "$"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), backendMutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed on a backend with fault %q; output:\n%s", name, out)
			}
			if !strings.Contains(string(out), "=== RUN   TestBackendConformance/"+m.fails) {
				t.Fatalf("subtest %s did not run; output:\n%s", m.fails, out)
			}
			fail := regexp.MustCompile(`(?m)^\s*--- FAIL: TestBackendConformance/` + regexp.QuoteMeta(m.fails) + ` `)
			if !fail.Match(out) {
				t.Errorf("fault %q did not fail %s; failures:\n%s", name, m.fails, failures(out))
			}
		})
	}
}
