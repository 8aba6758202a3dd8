package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/eventstore"
)

// Factory returns a new, empty store for one test. It is called once per
// leaf subtest with that subtest's own t, and registers with t.Cleanup
// whatever it must release (the suite closes some stores itself; Close is
// idempotent).
type Factory = func(t *testing.T) eventstore.Store

// waitTimeout bounds every wait of the suite on something asynchronous (a
// watcher's next event, the end of an iteration). It is a failure deadline,
// not a pause: waits end as soon as what they wait for happens.
var waitTimeout = 15 * time.Second

// timeSlack is how far a store-set time may lie outside the interval of the
// call that set it: stores may truncate times (PostgreSQL keeps
// microseconds) or take them from a database server whose clock differs a
// little from the test's.
const timeSlack = 2 * time.Second

// test is one leaf of the suite (or, for tables, a parent of leaves that
// each call the factory themselves).
type test struct {
	name string
	run  func(t *testing.T, newStore Factory)
}

// Features describes optional abilities of the stores under test. The zero
// value runs every subtest that needs only the Factory.
type Features struct {
	// NewPair, when set, opens two stores on one new database, as two
	// processes would. It enables the Shared subtests: idempotency and
	// conflicts across stores, watches woken by the other store's appends,
	// one global order for writers on both. Leave it nil for a store that
	// cannot be opened twice (a private in-memory database).
	NewPair PairFactory
	// NoFindEvent declares stores that cannot look events up by ID: the
	// FindEvent cases then expect errors.ErrUnsupported from every lookup
	// that passes the usual checks, instead of the events.
	NoFindEvent bool
	// NoLifecycle declares stores that cannot delete (a front over a
	// driver without the Deleter ability): the Lifecycle cases then
	// expect errors.ErrUnsupported from the Stream handle's Delete,
	// Truncate and DeleteSnapshots.
	NoLifecycle bool
}

// Run runs the conformance suite against the stores newStore returns.
//
// Subtests are named after the method and the case (Append/ExpectedVersionConflict,
// Read/Backwards, Watch/CatchUpThenLive ...) and run in parallel, so
// newStore must be safe to call concurrently and each store it returns must
// be independent and empty. Because they are parallel, they run after the
// calling test function returns: release anything shared with t.Cleanup,
// not defer.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	RunFeatures(t, newStore, Features{})
}

// RunFeatures is Run with optional abilities of the stores; see Features.
func RunFeatures(t *testing.T, newStore Factory, f Features) {
	t.Helper()
	type group struct {
		name  string
		tests []test
	}
	groups := []group{
		{"Append", appendTests()},
		{"Read", readTests()},
		{"Info", infoTests()},
		{"Watch", watchTests()},
		{"Snapshot", snapshotTests()},
		{"Close", closeTests()},
		{"CheckOrder", checkOrderTests()},
		{"FindEvent", findEventTests(f)},
		{"Stream", []test{{"Handle", leaf(testStreamHandle)}}},
		{"LargeEvents", largeEventTests()},
		{"Lifecycle", lifecycleTests(f)},
	}
	if f.NewPair != nil {
		groups = append(groups, group{"Shared", sharedTests(f.NewPair)})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newStore)
				})
			}
		})
	}
}

// leaf adapts a test body that needs one store.
func leaf(fn func(t *testing.T, s eventstore.Store)) func(t *testing.T, newStore Factory) {
	return func(t *testing.T, newStore Factory) {
		t.Helper()
		s := newStore(t)
		if s == nil {
			t.Fatal("factory returned a nil store")
		}
		fn(t, s)
	}
}

// cmpEvents compares recorded events field by field, except Time (checked
// on its own with checkTimes or wantTime) and Position (adapter-chosen;
// checked with checkPositions). Nil and empty Data or Metadata are equal.
var cmpEvents = []cmp.Option{
	cmpBytes,
	cmpopts.IgnoreFields(eventstore.Event{}, "Time"),
	cmpopts.IgnoreFields(eventstore.Recorded{}, "Position"),
	cmpopts.EquateEmpty(),
}

// cmpBytes compares non-empty byte slices as a whole: go-cmp's element-wise
// diff takes seconds on the large payloads of the suite. (Empty ones are
// left to cmpopts.EquateEmpty, which every comparison of the suite uses.)
var cmpBytes = cmp.FilterValues(func(a, b []byte) bool { return len(a) > 0 && len(b) > 0 }, cmp.Comparer(bytes.Equal))

// ctxTimeout returns t's context bounded by waitTimeout, so a store that
// hangs fails the test instead of the whole run.
func ctxTimeout(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ev returns an event of the given type with data, no ID.
func ev(typ, data string) eventstore.Event {
	return eventstore.Event{Type: typ, Data: []byte(data)}
}

// evID returns an event with an idempotency ID.
func evID(id, typ string) eventstore.Event {
	return eventstore.Event{ID: id, Type: typ, Data: []byte("data of " + id)}
}

// numbered returns n events of type typ with data prefix-1 ... prefix-n.
func numbered(n int, typ, prefix string) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = ev(typ, fmt.Sprintf("%s-%d", prefix, i+1))
	}
	return evs
}

// recorded returns what reading evs back from stream should give, with
// versions starting at first.
func recorded(stream string, first uint64, evs ...eventstore.Event) []eventstore.Recorded {
	out := make([]eventstore.Recorded, len(evs))
	for i, e := range evs {
		out[i] = eventstore.Recorded{Event: e, StreamID: stream, Version: first + uint64(i)}
	}
	return out
}

// mustAppend appends and fails the test on error.
func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, evs ...eventstore.Event) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxTimeout(t), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, expected, len(evs), err)
	}
	return res
}

// readAll reads with opts and fails the test on error.
func readAll(t *testing.T, s eventstore.Store, stream string, opts eventstore.ReadOptions) []eventstore.Recorded {
	t.Helper()
	got, err := eventstore.Collect(s.Read(ctxTimeout(t), stream, opts))
	if err != nil {
		t.Fatalf("Read(%q, %+v): %v", stream, opts, err)
	}
	return got
}

// info calls Info and fails the test on error.
func info(t *testing.T, s eventstore.Store, stream string) eventstore.StreamInfo {
	t.Helper()
	got, err := s.Info(ctxTimeout(t), stream)
	if err != nil {
		t.Fatalf("Info(%q): %v", stream, err)
	}
	return got
}

// wantVersion checks a stream's version and event count.
func wantVersion(t *testing.T, s eventstore.Store, stream string, want uint64) {
	t.Helper()
	got := info(t, s, stream)
	if got.Version != want || got.Count != want {
		t.Errorf("Info(%q): version %d, count %d; want %d, %d", stream, got.Version, got.Count, want, want)
	}
}

// wantEmptyStore checks that nothing at all is stored.
func wantEmptyStore(t *testing.T, s eventstore.Store) {
	t.Helper()
	if got := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}); len(got) != 0 {
		t.Errorf("store holds %d events, want none: %+v", len(got), got)
	}
}

// wantEvents compares events read back with what was expected.
func wantEvents(t *testing.T, what string, want, got []eventstore.Recorded) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpEvents...); diff != "" {
		t.Errorf("%s: events mismatch (-want +got):\n%s", what, diff)
	}
}

// checkTimes checks that every event's Time is set and lies in [lo, hi]
// within timeSlack.
func checkTimes(t *testing.T, got []eventstore.Recorded, lo, hi time.Time) {
	t.Helper()
	for _, r := range got {
		checkTime(t, fmt.Sprintf("event %s@%d", r.StreamID, r.Version), r.Time, lo, hi)
	}
}

func checkTime(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.IsZero() {
		t.Errorf("%s: Time is zero, want it set by the store", what)
		return
	}
	if got.Before(lo.Add(-timeSlack)) || got.After(hi.Add(timeSlack)) {
		t.Errorf("%s: Time %v is outside [%v, %v]", what, got, lo, hi)
	}
}

// checkPositions checks that positions are non-zero and strictly
// increasing (or decreasing when backwards).
func checkPositions(t *testing.T, got []eventstore.Recorded, backwards bool) {
	t.Helper()
	for i, r := range got {
		if r.Position == 0 {
			t.Errorf("event %d (%s@%d): Position 0, want > 0", i, r.StreamID, r.Version)
		}
		if i == 0 {
			continue
		}
		prev := got[i-1].Position
		if (!backwards && r.Position <= prev) || (backwards && r.Position >= prev) {
			t.Errorf("event %d (%s@%d): Position %d after %d, want strictly %s", i, r.StreamID, r.Version, r.Position, prev,
				map[bool]string{false: "increasing", true: "decreasing"}[backwards])
		}
	}
}

// versions returns the versions of events.
func versions(got []eventstore.Recorded) []uint64 {
	out := make([]uint64, len(got))
	for i, r := range got {
		out[i] = r.Version
	}
	return out
}

// span returns the versions lo..hi, or hi..lo when lo > hi.
func span(lo, hi uint64) []uint64 {
	var out []uint64
	if lo <= hi {
		for v := lo; v <= hi; v++ {
			out = append(out, v)
		}
		return out
	}
	for v := lo; v >= hi; v-- {
		out = append(out, v)
	}
	return out
}

// wantErr checks that err matches target with errors.Is.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want errors.Is(err, %v)", what, err, target)
	}
}

// wantValidation checks that err is a *ValidationError that unwraps to
// ErrInvalidInput.
func wantValidation(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("%s: error %v, want errors.Is(err, ErrInvalidInput)", what, err)
	}
	var ve *eventstore.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("%s: error %v (%T), want a *ValidationError", what, err, err)
	}
}

// readErr ranges over seq without stopping at the error and returns what
// it yielded, checking that at most one error came and nothing after it.
func readErr(t *testing.T, what string, seqErr func(yield func(eventstore.Recorded, error) bool)) ([]eventstore.Recorded, error) {
	t.Helper()
	var got []eventstore.Recorded
	var first error
	for r, err := range seqErr {
		if first != nil {
			t.Errorf("%s: iterator yielded (%s@%d, %v) after error %v; want it to stop after one error", what, r.StreamID, r.Version, err, first)
			break
		}
		if err != nil {
			first = err
			continue
		}
		got = append(got, r)
	}
	return got, first
}
