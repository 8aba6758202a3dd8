package torture

import (
	"fmt"
	"sort"
	"strings"
)

// Stored is one event of the final store, as the commit checker sees it.
type Stored struct {
	// Marker is the event's marker ("" for an event the workload did not
	// write).
	Marker   string
	Stream   string
	Version  uint64
	Position uint64
}

// CommitInput is what CheckCommit compares: the store's final contents
// and every operation of the commit workload with its answer.
type CommitInput struct {
	// All is Read(AllStreams) of the final store, in the order it yielded.
	All []Stored
	// Ops are the operations, each with the answer it got.
	Ops []Op
}

// CommitReport is CheckCommit's verdict.
type CommitReport struct {
	Violations []Violation
	// Counts tallies the operations by "kind outcome" (an operation never
	// answered counts as "unanswered"), and the violations by "kind
	// outcome violation", e.g. "any ack" and "any ack doubled".
	Counts map[string]int
}

// CheckCommit verifies the commit workload's guarantees (issue 9 item 1):
//
//   - an acknowledged operation is stored exactly once (twice is a
//     Doubled violation, never is a Loss), where and as reported;
//   - a refused operation (a conflict) is not stored at all
//     (FalseConflict);
//   - an operation answered with ErrUnknownOutcome or another error, or
//     never answered, is stored once or not at all (Doubled otherwise);
//   - each copy of an operation is whole: all its events, at consecutive
//     versions of its stream, in order (PartialBatch);
//   - every stored event belongs to an operation (Phantom), each stream's
//     versions are 1, 2, 3, ... in position order (VersionGap), and
//     positions strictly increase (Order).
func CheckCommit(in CommitInput) CommitReport {
	rep := CommitReport{Counts: map[string]int{}}
	report := func(op *Op, k Kind, format string, args ...any) {
		rep.Violations = append(rep.Violations, Violation{Kind: k, Detail: fmt.Sprintf(format, args...)})
		if op != nil {
			rep.Counts[opKey(op)+" "+string(k)]++
		}
	}

	copies := make(map[string][]Stored, len(in.All))
	type streamState struct {
		last   uint64
		broken bool
	}
	streams := map[string]*streamState{}
	for i, r := range in.All {
		if i > 0 && r.Position <= in.All[i-1].Position {
			report(nil, Order, "position %d (marker %q) follows position %d", r.Position, r.Marker, in.All[i-1].Position)
		}
		st := streams[r.Stream]
		if st == nil {
			st = &streamState{}
			streams[r.Stream] = st
		}
		if !st.broken && r.Version != st.last+1 {
			report(nil, VersionGap, "stream %q: version %d (marker %q, pos %d) follows version %d", r.Stream, r.Version, r.Marker, r.Position, st.last)
			st.broken = true // once per stream
		}
		st.last = r.Version
		copies[r.Marker] = append(copies[r.Marker], r)
	}

	owned := make(map[string]bool, len(in.All))
	for i := range in.Ops {
		op := &in.Ops[i]
		rep.Counts[opKey(op)]++
		n, whole := 0, true
		for i, m := range op.Markers {
			owned[m] = true
			if c := len(copies[m]); i > 0 && c != n {
				whole = false
				n = max(n, c)
			} else {
				n = c
			}
		}
		if !whole {
			report(op, PartialBatch, "%s %v on %q: its events are stored different numbers of times", op.Kind, op.Markers, op.Stream)
		}
		// Each copy whole: the k-th copy of every marker at consecutive
		// versions of the operation's stream.
	copiesLoop:
		for k := range n {
			first, ok := copyOf(copies, op.Markers[0], k)
			for i, m := range op.Markers {
				r, found := copyOf(copies, m, k)
				if !whole {
					break copiesLoop
				}
				if !ok || !found || r.Stream != op.Stream || r.Version != first.Version+uint64(i) {
					report(op, PartialBatch, "%s %v on %q: copy %d not whole at consecutive versions (marker %q stored at %s@%d)", op.Kind, op.Markers, op.Stream, k+1, m, r.Stream, r.Version)
					break copiesLoop
				}
			}
		}
		where := func() string {
			var s string
			for k := range n {
				r, _ := copyOf(copies, op.Markers[0], k)
				s += fmt.Sprintf(" %s@%d p%d", r.Stream, r.Version, r.Position)
			}
			return s
		}
		switch {
		case op.Outcome == Acked && n == 0:
			report(op, Loss, "acknowledged %s %v on %q (v%d p%d) is not stored", op.Kind, op.Markers, op.Stream, op.Version, op.Position)
		case op.Outcome == Refused && n > 0:
			report(op, FalseConflict, "%s %v on %q was refused (%s) but is stored %d time(s):%s", op.Kind, op.Markers, op.Stream, op.Err, n, where())
		case n > 1:
			report(op, Doubled, "%s %v on %q (%s) is stored %d times:%s", op.Kind, op.Markers, op.Stream, strings.TrimPrefix(opKey(op), string(op.Kind)+" "), n, where())
		case op.Outcome == Acked:
			last, _ := copyOf(copies, op.Markers[len(op.Markers)-1], 0)
			if last.Stream == op.Stream && (op.Version != last.Version || (op.Kind != OpUpdate && op.Position != last.Position)) {
				report(op, AckMismatch, "acknowledged %s %v on %q: reported v%d p%d, stored last event at v%d p%d", op.Kind, op.Markers, op.Stream, op.Version, op.Position, last.Version, last.Position)
			}
		}
	}
	for _, r := range in.All {
		if !owned[r.Marker] {
			report(nil, Phantom, "stored event %s@%d p%d (marker %q) belongs to no operation", r.Stream, r.Version, r.Position, r.Marker)
		}
	}
	return rep
}

// opKey is "kind outcome" of op.
func opKey(op *Op) string {
	if op.Outcome == "" {
		return string(op.Kind) + " unanswered"
	}
	return string(op.Kind) + " " + string(op.Outcome)
}

// copyOf returns the k-th stored copy of marker, in position order.
func copyOf(copies map[string][]Stored, marker string, k int) (Stored, bool) {
	cs := copies[marker]
	if k >= len(cs) {
		return Stored{}, false
	}
	return cs[k], true
}

// SortedCounts returns the report's counts as "key=n" strings, sorted.
func (r CommitReport) SortedCounts() []string {
	out := make([]string, 0, len(r.Counts))
	for k, n := range r.Counts {
		out = append(out, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(out)
	return out
}
