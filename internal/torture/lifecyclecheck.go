package torture

import (
	"fmt"
	"sort"
	"strings"

	"github.com/esv2/esv2/eventstore"
)

// The violations only the lifecycle checker reports.
const (
	PositionReused Kind = "position-reused" // an append got a position at or below one acknowledged before it began
	DeletedAccepts Kind = "deleted-accepts" // a deleted stream accepted an operation after the deletion was acknowledged
	Resurrected    Kind = "resurrected"     // an event an acknowledged deletion or truncation removed is stored
	InfoMismatch   Kind = "info-mismatch"   // Info disagrees with the stored events
	HeadBehind     Kind = "head-behind"     // Info(AllStreams).Position is below a position handed out
)

// CheckLifecycle verifies the lifecycle workload's guarantees against the
// final store:
//
//   - positions strictly increase in Read(AllStreams), and each stream's
//     Read agrees with it; no marker (no event ID) is stored twice; every
//     stored event belongs to an append of its stream (an event with an
//     ID stored under it, one without under none);
//   - an acknowledged append's events are each stored once, where it
//     reported (a first attempt: at its versions, its last at its
//     position), or were removed by a deletion or truncation (not
//     refused, whatever its answer) of the stream that had not answered
//     before the append began and, for a truncation, whose bound was
//     above the event's version (Loss otherwise);
//   - a refused append (and every other try of its IDs refused) is not
//     stored;
//   - an append that wrote events got a position above that of every
//     append answered before it began, in any process, the appends whose
//     events were later removed included (PositionReused);
//   - after an acknowledged deletion, the stream has no event, Info says
//     Deleted, it keeps no snapshot, and no append, truncation or
//     snapshot save that began after the acknowledgement succeeded; after an acknowledged truncation, no
//     event below its bound is stored; Info reports Deleted only for a
//     stream some deletion may have removed, and a refusal for deletion
//     only after such a deletion began;
//   - a surviving stream's versions are contiguous and end at Info's
//     Version, and Info's Count is the number stored; Info(AllStreams)
//     is at or above every position acknowledged or stored;
//   - each watcher (of AllStreams, or of LifecycleKeep, a stream
//     truncated and never deleted; its runs across restarts) yielded
//     strictly increasing positions; each event it yielded is stored at
//     that position as yielded or was removed by a deletion or
//     truncation of its stream (not refused); and every stored event at
//     or below the last position it yielded was yielded (deleted
//     positions are skipped, never a surviving event).
//
// It does not check that a watcher never yields an event whose deletion
// was acknowledged before: the store does not promise it (a watcher may
// yield what it read before the deletion committed).
func CheckLifecycle(in LifecycleInput) []Violation {
	var out []Violation
	report := func(k Kind, format string, args ...any) {
		out = append(out, Violation{Kind: k, Detail: fmt.Sprintf(format, args...)})
	}

	// The operations by marker, and the removals by stream.
	type owner struct {
		op *LOp
		i  int
	}
	owners := map[string]owner{}
	removers := map[string][]*LOp{}
	ackedDel := map[string][]*LOp{}
	ackedTrunc := map[string][]*LOp{}
	siblings := map[string][]*LOp{} // tries of one batch, by first marker
	var maxAcked uint64
	for i := range in.Ops {
		op := &in.Ops[i]
		switch op.Kind {
		case LAppend, LAppendNI:
			for j, m := range op.Markers {
				if _, ok := owners[m]; !ok || op.Try == 0 {
					owners[m] = owner{op, j}
				}
			}
			if len(op.Markers) > 0 {
				siblings[op.Markers[0]] = append(siblings[op.Markers[0]], op)
			}
			if op.Outcome == Acked {
				maxAcked = max(maxAcked, op.Position)
			}
		case LTruncate, LDelete:
			if op.Outcome != Refused {
				removers[op.Stream] = append(removers[op.Stream], op)
			}
			if op.Outcome == Acked && op.Kind == LDelete {
				ackedDel[op.Stream] = append(ackedDel[op.Stream], op)
			}
			if op.Outcome == Acked && op.Kind == LTruncate {
				ackedTrunc[op.Stream] = append(ackedTrunc[op.Stream], op)
			}
		}
	}

	// The store's contents.
	byMarker := map[string][]Stored{}
	byPos := map[uint64]Stored{}
	perStream := map[string][]Stored{}
	var maxStored uint64
	for i, r := range in.All {
		if i > 0 && r.Position <= in.All[i-1].Position {
			report(Order, "position %d follows position %d", r.Position, in.All[i-1].Position)
		}
		maxStored = max(maxStored, r.Position)
		byMarker[r.Marker] = append(byMarker[r.Marker], r)
		byPos[r.Position] = r
		perStream[r.Stream] = append(perStream[r.Stream], r)
		o, ok := owners[r.Marker]
		switch {
		case !ok:
			report(Phantom, "stored %s@%d p%d (marker %q) belongs to no append", r.Stream, r.Version, r.Position, r.Marker)
			continue
		case o.op.Stream != r.Stream:
			report(WrongStream, "marker %q of an append to %q is stored in %s@%d", r.Marker, o.op.Stream, r.Stream, r.Version)
		}
		if id, want := in.IDs[r.Position], map[bool]string{true: r.Marker}[o.op.Kind == LAppend]; id != want {
			report(AckMismatch, "stored %s@%d (marker %q) has ID %q, want %q", r.Stream, r.Version, r.Marker, id, want)
		}
	}
	for m, cs := range byMarker {
		if len(cs) > 1 {
			report(Duplicate, "marker %q is stored %d times: %v", m, len(cs), cs)
		}
	}

	// Streams: Read(stream) agrees with Read(all); Info agrees with both;
	// the lifecycle rules.
	for s, info := range in.Infos {
		got, want := in.Streams[s], perStream[s]
		if len(got) != len(want) {
			report(StreamMismatch, "stream %q: Read yields %d events, Read(all) %d", s, len(got), len(want))
		} else {
			for i := range got {
				if got[i] != want[i] {
					report(StreamMismatch, "stream %q: Read yields %+v where Read(all) has %+v", s, got[i], want[i])
					break
				}
			}
		}
		if uint64(len(want)) != info.Count {
			report(InfoMismatch, "stream %q: Info.Count %d, %d events stored", s, info.Count, len(want))
		}
		for i := 1; i < len(want); i++ {
			if want[i].Version != want[i-1].Version+1 {
				report(VersionGap, "stream %q: version %d follows version %d", s, want[i].Version, want[i-1].Version)
				break
			}
		}
		switch {
		case info.Deleted:
			if len(want) > 0 {
				report(Resurrected, "deleted stream %q holds %d events (first %s@%d p%d)", s, len(want), s, want[0].Version, want[0].Position)
			}
			if len(removers[s]) == 0 {
				report(InfoMismatch, "stream %q reports Deleted, and no deletion of it was tried", s)
			}
			if v, ok := in.Snapshots[s]; ok {
				report(Resurrected, "deleted stream %q keeps a snapshot at version %d", s, v)
			}
		case len(want) > 0 && want[len(want)-1].Version != info.Version:
			report(InfoMismatch, "stream %q: Info.Version %d, last event stored v%d", s, info.Version, want[len(want)-1].Version)
		case len(want) == 0 && info.Version > 0:
			report(Loss, "stream %q (not deleted) at version %d holds no event: a truncation keeps the last", s, info.Version)
		}
		if len(ackedDel[s]) > 0 && !info.Deleted {
			report(Resurrected, "stream %q: its deletion was acknowledged and Info does not report it deleted", s)
		}
		for _, t := range ackedTrunc[s] {
			if len(want) > 0 && want[0].Version < t.Before {
				report(Resurrected, "stream %q: truncation before %d (%s) was acknowledged, v%d is stored", s, t.Before, t.Key, want[0].Version)
			}
		}
	}

	// Appends.
	for i := range in.Ops {
		op := &in.Ops[i]
		if op.Kind != LAppend && op.Kind != LAppendNI {
			if op.Outcome == Acked && (op.Kind == LTruncate || op.Kind == LSnapshot) {
				for _, d := range ackedDel[op.Stream] {
					if d.End < op.Start {
						report(DeletedAccepts, "%s %q (%s) acknowledged, begun after the deletion %s was acknowledged", op.Kind, op.Stream, op.Key, d.Key)
						break
					}
				}
			}
			if op.DeletedErr && !removedBefore(removers[op.Stream], op.End) {
				report(InfoMismatch, "%s %q (%s) refused as deleted, and no deletion had begun: %s", op.Kind, op.Stream, op.Key, op.Err)
			}
			continue
		}
		n := uint64(len(op.Markers))
		switch op.Outcome {
		case Acked:
			for _, d := range ackedDel[op.Stream] {
				if d.End < op.Start {
					report(DeletedAccepts, "append %v to %q (%s) acknowledged v%d p%d, begun after the deletion %s was acknowledged", op.Markers, op.Stream, op.Key, op.Version, op.Position, d.Key)
					break
				}
			}
			for j, m := range op.Markers {
				cs := byMarker[m]
				want := op.Version - n + 1 + uint64(j)
				if len(cs) > 0 {
					r := cs[0]
					if op.Try == 0 && (r.Stream != op.Stream || r.Version != want || (j == len(op.Markers)-1 && r.Position != op.Position)) {
						report(AckMismatch, "append %s: marker %q reported %s@%d (last p%d), stored %s@%d p%d", op.Key, m, op.Stream, want, op.Position, r.Stream, r.Version, r.Position)
					}
					continue
				}
				if !removedFor(removers[op.Stream], op, want) {
					report(Loss, "acknowledged append %s (try %d) %v to %q (v%d p%d): marker %q is not stored and no removal explains it", op.Key, op.Try, op.Markers, op.Stream, op.Version, op.Position, m)
				}
			}
		case Refused:
			if op.DeletedErr && !removedBefore(removers[op.Stream], op.End) {
				report(InfoMismatch, "append %s to %q refused as deleted, and no deletion had begun: %s", op.Key, op.Stream, op.Err)
			}
			refusedAll := true
			for _, o := range siblings[op.Markers[0]] {
				if o.Outcome != Refused {
					refusedAll = false
				}
			}
			if refusedAll && len(byMarker[op.Markers[0]]) > 0 {
				r := byMarker[op.Markers[0]][0]
				report(FalseConflict, "append %s %v to %q was refused (%s) and is stored at %s@%d p%d", op.Key, op.Markers, op.Stream, op.Err, r.Stream, r.Version, r.Position)
			}
		}
	}

	// Positions never reused: an append that wrote got a position above
	// every one acknowledged before it began.
	var writes []*LOp
	for i := range in.Ops {
		op := &in.Ops[i]
		if op.Outcome == Acked && op.Position > 0 && (op.Kind == LAppendNI || op.Try == 0) {
			writes = append(writes, op)
		}
	}
	byEnd := append([]*LOp(nil), writes...)
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].End < byEnd[j].End })
	var best *LOp
	k := 0
	for _, b := range writes { // by Start
		for ; k < len(byEnd) && byEnd[k].End < b.Start; k++ {
			if best == nil || byEnd[k].Position > best.Position {
				best = byEnd[k]
			}
		}
		if best != nil && b.Position <= best.Position {
			report(PositionReused, "append %s to %q got p%d, at or below p%d acknowledged to %s (%q) before it began", b.Key, b.Stream, b.Position, best.Position, best.Key, best.Stream)
		}
	}

	if in.Head < maxAcked || in.Head < maxStored {
		report(HeadBehind, "Info(AllStreams).Position %d; highest acknowledged %d, highest stored %d", in.Head, maxAcked, maxStored)
	}

	// Watchers.
	names := make([]string, 0, len(in.Watches))
	for n := range in.Watches {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		seen := in.Watches[name]
		stream, list := eventstore.AllStreams, in.All
		if strings.HasPrefix(name, "lkwatch-") {
			stream, list = LifecycleKeep, perStream[LifecycleKeep]
		}
		got := map[uint64]bool{}
		var last uint64
		for i, w := range seen {
			if i > 0 && w.Position <= seen[i-1].Position {
				report(WatchWrong, "%s: p%d follows p%d", name, w.Position, seen[i-1].Position)
			}
			if stream != eventstore.AllStreams && w.Stream != stream {
				report(WatchWrong, "%s: a watch of %q yielded %s@%d", name, stream, w.Stream, w.Version)
			}
			got[w.Position] = true
			last = max(last, w.Position)
			if r, ok := byPos[w.Position]; ok {
				if r.Stream != w.Stream || r.Version != w.Version {
					report(WatchWrong, "%s: yielded %s@%d at p%d, stored is %s@%d", name, w.Stream, w.Version, w.Position, r.Stream, r.Version)
				}
				continue
			}
			if len(removers[w.Stream]) == 0 {
				report(WatchWrong, "%s: yielded %s@%d p%d, neither stored nor removed", name, w.Stream, w.Version, w.Position)
			}
		}
		for _, r := range list {
			if r.Position > last {
				break
			}
			if !got[r.Position] {
				report(WatchGap, "%s: skipped %s@%d p%d (it yielded up to p%d)", name, r.Stream, r.Version, r.Position, last)
			}
		}
	}
	return out
}

// removedBefore reports whether one of the removals began before t.
func removedBefore(removers []*LOp, t int64) bool {
	for _, r := range removers {
		if r.Kind == LDelete && r.Start < t {
			return true
		}
	}
	return false
}

// removedFor reports whether one of the removals (of op's stream, not
// refused) can explain the absence of op's event at version v: it had not
// answered before op began and, a truncation of a first attempt's event,
// its bound is above v (a retry's versions are not known).
func removedFor(removers []*LOp, op *LOp, v uint64) bool {
	for _, r := range removers {
		if r.End != 0 && r.End < op.Start {
			continue
		}
		if r.Kind == LDelete || op.Try > 0 || r.Before > v {
			return true
		}
	}
	return false
}
