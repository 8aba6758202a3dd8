package torture

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// validCommitInput is a commit-workload history without violations: an
// acknowledged Exact batch and Any append, a refused Exact append and
// Update (not stored), an append with an unknown outcome that was stored
// and one with an error that was not, an unanswered batch that was stored
// (killed between commit and answer), and an acknowledged Update.
func validCommitInput() CommitInput {
	return CommitInput{
		All: []Stored{
			{"m1", "x-a", 1, 1}, {"m2", "x-a", 2, 2}, {"m3", "any-0", 1, 3}, {"m5", "any-0", 2, 4},
			{"m7", "x-a", 3, 5}, {"m8", "x-a", 4, 6}, {"u1", "u-a", 1, 7},
		},
		Ops: []Op{
			{Kind: OpExact, Stream: "x-a", Markers: []string{"m1", "m2"}, Outcome: Acked, Version: 2, Position: 2},
			{Kind: OpAny, Stream: "any-0", Markers: []string{"m3"}, Expected: -1, Outcome: Acked, Version: 1, Position: 3},
			{Kind: OpExact, Stream: "x-a", Markers: []string{"m4"}, Expected: 1, Outcome: Refused, Err: "conflict"},
			{Kind: OpAny, Stream: "any-0", Markers: []string{"m5"}, Expected: -1, Outcome: Unknown},
			{Kind: OpAny, Stream: "any-0", Markers: []string{"m6"}, Expected: -1, Outcome: Failed},
			{Kind: OpExact, Stream: "x-a", Markers: []string{"m7", "m8"}, Expected: 2},
			{Kind: OpUpdate, Stream: "u-a", Markers: []string{"u1"}, Outcome: Acked, Version: 1},
			{Kind: OpUpdate, Stream: "u-a", Markers: []string{"u2"}, Outcome: Refused, Err: "gave up"},
		},
	}
}

func TestCheckCommitValid(t *testing.T) {
	rep := CheckCommit(validCommitInput())
	if len(rep.Violations) != 0 {
		t.Fatalf("CheckCommit of a valid history reported %v", rep.Violations)
	}
	want := map[string]int{"exact ack": 1, "any ack": 1, "exact refused": 1, "any unknown": 1, "any error": 1,
		"exact unanswered": 1, "update ack": 1, "update refused": 1}
	if diff := cmp.Diff(want, rep.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestCheckCommitCatchesInjected injects one violation at a time into a
// valid commit-workload history and checks the checker reports exactly
// that kind.
func TestCheckCommitCatchesInjected(t *testing.T) {
	add := func(marker, stream string, version uint64) func(in *CommitInput) {
		return func(in *CommitInput) { in.All = append(in.All, Stored{marker, stream, version, 8}) }
	}
	for _, c := range []struct {
		name   string
		inject func(in *CommitInput)
		want   []Kind
	}{
		{"AckedAnyStoredTwice", add("m3", "any-0", 3), []Kind{Doubled}},
		{"UnknownStoredTwice", add("m5", "any-0", 3), []Kind{Doubled}},
		{"UnansweredStoredTwice", func(in *CommitInput) {
			in.All = append(in.All, Stored{"m7", "x-a", 5, 8}, Stored{"m8", "x-a", 6, 9})
		}, []Kind{Doubled}},
		{"UpdateAppliedTwice", add("u1", "u-a", 2), []Kind{Doubled}},
		{"FalseConflict", add("m4", "x-a", 5), []Kind{FalseConflict}},
		{"RefusedUpdateApplied", add("u2", "u-a", 2), []Kind{FalseConflict}},
		{"AckLost", func(in *CommitInput) {
			in.All = slices.Delete(in.All, 2, 3)
			in.All[2].Version = 1
		}, []Kind{Loss}},
		{"AckedUpdateLost", func(in *CommitInput) { in.All = in.All[:6] }, []Kind{Loss}},
		{"VersionGap", func(in *CommitInput) { in.All[4].Version, in.All[5].Version = 4, 5 }, []Kind{VersionGap}},
		{"PositionsReordered", func(in *CommitInput) { in.All[5].Position, in.All[6].Position = 7, 6 }, []Kind{Order}},
		{"HalfABatch", func(in *CommitInput) { in.All = slices.Delete(in.All, 5, 6) }, []Kind{PartialBatch}},
		{"BatchReversed", func(in *CommitInput) { in.All[4].Marker, in.All[5].Marker = "m8", "m7" }, []Kind{PartialBatch}},
		{"Phantom", add("zz", "any-0", 3), []Kind{Phantom}},
		{"AckWrongPosition", func(in *CommitInput) { in.Ops[1].Position = 4 }, []Kind{AckMismatch}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := validCommitInput()
			c.inject(&in)
			got := CheckCommit(in).Violations
			if diff := cmp.Diff(c.want, kinds(got)); diff != "" {
				t.Errorf("violation kinds (-want +got):\n%s\nreport: %v", diff, got)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Outcome
	}{
		{nil, Acked},
		{fmt.Errorf("save: %w", &eventstore.ConflictError{StreamID: "s", Expected: 1, Actual: 2}), Refused},
		{&eventstore.ValidationError{Field: "f", Index: -1, Reason: "r"}, Refused},
		{fmt.Errorf("append: %w", eventstore.ErrUnknownOutcome), Unknown},
		{errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)"), Failed},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
