package testsuite_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// mutantEnv names the deliberate bug TestConformance switches on in the
// child processes of TestSuiteCatchesMutants.
const mutantEnv = "ESV2_TESTSUITE_MUTANT"

// Each mutant is caught by what its bug makes the store do, at once,
// except closeKeepsWatches, noCrossWake and watchWaitsRemoved: their only
// symptom is a watch that never yields, which no check can see before a
// wait times out (the 2 s waitTimeout of TestConformance's mutant runs).
var mutants = map[string]struct {
	bugs bugs
	// fails is a subtest that must fail with this bug.
	fails string
}{
	"ignoreExpected":         {bugs{ignoreExpected: true}, "Append/ExpectedVersionConflict"},
	"noIdempotency":          {bugs{noIdempotency: true}, "Append/Idempotency/RetryReportsDuplicates"},
	"prefixIsLike":           {bugs{prefixIsLike: true}, "Read/AllStreams/StreamPrefix/Dash"},
	"untilIgnored":           {bugs{untilIgnored: true}, "Read/Until"},
	"partitionsIgnored":      {bugs{partitionsIgnored: true}, "Read/AllStreams/Partitions"},
	"omitShiftsFields":       {bugs{omitShiftsFields: true}, "Read/Omit"},
	"watchSkipsOne":          {bugs{watchSkipsOne: true}, "Watch/FromStart/Stream"},
	"closeKeepsWatches":      {bugs{closeKeepsWatches: true}, "Watch/CloseEndsWatchers"},
	"limitBeforeFilter":      {bugs{limitBeforeFilter: true}, "Read/Filter/LimitCountsMatches"},
	"olderSnapshotWins":      {bugs{olderSnapshotWins: true}, "Snapshot/OlderDoesNotOverwrite"},
	"partialBatch":           {bugs{partialBatch: true}, "Append/InvalidEventMidBatchWritesNothing"},
	"rawErrorOnClose":        {bugs{rawErrorOnClose: true}, "Close/IteratorsMadeBeforeClose"},
	"timeNotSet":             {bugs{timeNotSet: true}, "Append/TimeSetByStore"},
	"presentOffByOne":        {bugs{presentOffByOne: true}, "Watch/FromEnd/Stream"},
	"emptyUnchecked":         {bugs{emptyUnchecked: true}, "Append/EmptyBatch"},
	"otherStreamIDOK":        {bugs{otherStreamIDOK: true}, "Append/Idempotency/IDInOtherStream"},
	"missingInfoError":       {bugs{missingInfoError: true}, "Info/MissingStream"},
	"watchRepeatsLast":       {bugs{watchRepeatsLast: true}, "Watch/FromStart/Stream"},
	"liveIgnoresFilter":      {bugs{liveIgnoresFilter: true}, "Watch/Filter"},
	"metaPrefixIsEq":         {bugs{metaPrefixIsEq: true}, "Read/Filter/Metadata/Prefix"},
	"resultFirstPos":         {bugs{resultFirstPos: true}, "Append/Result"},
	"retryPositionZero":      {bugs{retryPositionZero: true}, "Append/Idempotency/RetryReportsPosition"},
	"contextMetadataIgnored": {bugs{contextMetadataIgnored: true}, "Append/ContextMetadata"},
	"cancelYieldsError":      {bugs{cancelYieldsError: true}, "Watch/ContextCancelEnds"},
	"noCrossWake":            {bugs{noCrossWake: true}, "Shared/WatchWokenByOtherStore"},
	"nanoTimes":              {bugs{nanoTimes: true}, "Append/TimePrecision"},
	"fromWraps":              {bugs{fromWraps: true}, "Read/FromPastEnd"},
	"pastEndEnds":            {bugs{pastEndEnds: true}, "Watch/AfterPastEnd"},
	"zeroStartIsEnd":         {bugs{zeroStartIsEnd: true}, "Watch/FromStart/ZeroValue"},
	"snapshotPastHead":       {bugs{snapshotPastHead: true}, "Snapshot/PastHead"},

	"liveIgnoresMetadata": {bugs{liveIgnoresMetadata: true}, "Watch/FilteredAtHead"},
	"behindSkipsAhead":    {bugs{behindSkipsAhead: true}, "Watch/SlowAtHeadFallsBehind"},
	"joinRepeats":         {bugs{joinRepeats: true}, "Watch/ManyAtHead"},

	"closedBeforeNilContext": {bugs{closedBeforeNilContext: true}, "CheckOrder/NilContext"},
	"closedBeforeContext":    {bugs{closedBeforeContext: true}, "CheckOrder/EndedContext"},
	"validateBeforeContext":  {bugs{validateBeforeContext: true}, "CheckOrder/EndedContext"},
	"validateBeforeClosed":   {bugs{validateBeforeClosed: true}, "CheckOrder/ClosedBeforeArguments"},
	"ctxErrAfterWrite":       {bugs{ctxErrAfterWrite: true}, "Append/ContextEndsDuringAppend"},
	"ackAfterClose":          {bugs{ackAfterClose: true}, "Shared/CloseWhileAppending"},
	"noSizeLimit":            {bugs{noSizeLimit: true}, "Append/InvalidInput/HugeData"},
	"findReturnsLast":        {bugs{findReturnsLast: true}, "FindEvent/Found"},
	"findMissingIsZero":      {bugs{findMissingIsZero: true}, "FindEvent/NotFound"},

	"positionReuse":         {bugs{positionReuse: true}, "Lifecycle/Delete/NewestPositionsNotReused"},
	"positionReuseTrunc":    {bugs{positionReuse: true}, "Lifecycle/Truncate/NewestPositionsNotReused"},
	"deleteKeepsSnapshots":  {bugs{deleteKeepsSnapshots: true}, "Lifecycle/Delete/RemovesEventsAndSnapshots"},
	"appendAfterDelete":     {bugs{appendAfterDelete: true}, "Lifecycle/Delete/AppendRefused"},
	"deletedIDRetry":        {bugs{deletedIDRetry: true}, "Lifecycle/Delete/IDRetryRefused"},
	"snapshotAfterDelete":   {bugs{snapshotAfterDelete: true}, "Lifecycle/Delete/SnapshotRefused"},
	"deleteIgnoresExpect":   {bugs{deleteIgnoresExpect: true}, "Lifecycle/Delete/ExpectedVersionConflict"},
	"truncateTakesAll":      {bugs{truncateTakesAll: true}, "Lifecycle/Truncate/KeepsLastEvent"},
	"truncateOffByOne":      {bugs{truncateOffByOne: true}, "Lifecycle/Truncate/KeepsTail"},
	"deleteSnapsIgnoresNm":  {bugs{deleteSnapsIgnoresNm: true}, "Lifecycle/DeleteSnapshots/One"},
	"infoCountsRemoved":     {bugs{infoCountsRemoved: true}, "Lifecycle/Truncate/KeepsTail"},
	"watchWaitsRemoved":     {bugs{watchWaitsRemoved: true}, "Lifecycle/Watch/CatchUpSkipsRemoved"},
	"watchWaitsRemovedLive": {bugs{watchWaitsRemoved: true}, "Lifecycle/Watch/AcrossDeletion"},

	"listPrefixIsLike":   {bugs{listPrefixIsLike: true}, "Inspector/ListStreams"},
	"summaryNoOldest":    {bugs{summaryNoOldest: true}, "Inspector/Summary"},
	"snapshotsByVersion": {bugs{snapshotsByVersion: true}, "Inspector/ListSnapshots"},
	"verifyFromOne":      {bugs{verifyFromOne: true}, "Inspector/VerifyAfterLifecycle"},
}

// TestConformance runs the suite on the in-memory reference store: a
// correct store passes it.
func TestConformance(t *testing.T) {
	var b bugs
	if name := os.Getenv(mutantEnv); name != "" {
		m, ok := mutants[name]
		if !ok {
			t.Fatalf("unknown mutant %q", name)
		}
		b = m.bugs
		// The mutant's failures include waits that time out; keep them short.
		t.Cleanup(testsuite.SetWaitTimeout(2 * time.Second))
	}
	newStore := func(t *testing.T) eventstore.Store {
		s := newMemStore(b)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	testsuite.RunFeatures(t, newStore, testsuite.Features{
		NewPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
			s1 := newMemStore(b)
			s2 := s1.db.open(b)
			t.Cleanup(func() {
				if err := errors.Join(s1.Close(), s2.Close()); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return s1, s2
		},
	})
	testsuite.RunInspector(t, newStore)
}

// TestSuiteCatchesMutants runs the suite on deliberately broken stores, in
// child processes (a failing subtest cannot be contained otherwise), and
// checks that each bug makes the subtest meant to catch it fail.
func TestSuiteCatchesMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	if testing.Short() {
		t.Skip("runs the suite once per mutant")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Run only the subtest meant to catch the bug: fast, and its
			// failure cannot come from elsewhere.
			run := "^TestConformance$"
			for _, part := range strings.Split(m.fails, "/") {
				run += "/^" + regexp.QuoteMeta(part) + "$"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed on a store with bug %q; output:\n%s", name, out)
			}
			if !bytes.Contains(out, []byte("=== RUN   TestConformance/"+m.fails)) {
				t.Fatalf("subtest %s did not run; output:\n%s", m.fails, out)
			}
			fail := regexp.MustCompile(`(?m)^\s*--- FAIL: TestConformance/` + regexp.QuoteMeta(m.fails) + ` `)
			if !fail.Match(out) {
				t.Errorf("bug %q did not fail %s; failures:\n%s", name, m.fails, failures(out))
			}
		})
	}
}

// failures keeps the "--- FAIL" lines of a test output.
func failures(out []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(out) {
		if bytes.Contains(line, []byte("--- FAIL")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}
