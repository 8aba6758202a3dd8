package torture

import (
	"fmt"
	"sort"

	"github.com/esv2/esv2/eventstore"
)

// Batch is one append a writer attempted: its stream and its events' IDs,
// in batch order. A retry of a batch uses the same IDs.
type Batch struct {
	Stream string   `json:"s"`
	IDs    []string `json:"ids"`
}

// Ack is an append a writer was told succeeded (its ack line was written).
type Ack struct {
	Batch
	// Version, Position, Appended and Duplicates are the AppendResult's.
	Version    uint64 `json:"v"`
	Position   uint64 `json:"p"`
	Appended   int    `json:"n"`
	Duplicates int    `json:"d"`
}

// Seen is one event a watcher yielded.
type Seen struct {
	Position uint64 `json:"p"`
	Stream   string `json:"s"`
	Version  uint64 `json:"v"`
	ID       string `json:"id"`
}

// WatchLog is everything one watcher yielded, across its restarts, in the
// order it yielded it.
type WatchLog struct {
	// Name identifies the watcher in reports.
	Name string
	// Stream is the watched stream, or eventstore.AllStreams.
	Stream string
	// Seen is what the watcher yielded, oldest first.
	Seen []Seen
}

// Input is what the checker compares: the store's final contents and what
// the writers and watchers were told.
type Input struct {
	// All is Read(AllStreams) of the final store, in the order it yielded.
	All []eventstore.Recorded
	// Streams holds Read(stream) for each stream, when checked.
	Streams map[string][]eventstore.Recorded
	// Intents are all batches attempted (acknowledged or not).
	Intents []Batch
	// Acks are the acknowledged appends.
	Acks []Ack
	// Watches are the watchers' logs.
	Watches []WatchLog
}

// Kind classifies a violation.
type Kind string

// The kinds of violation the checker reports.
const (
	Loss           Kind = "loss"            // an acknowledged event is not stored
	Duplicate      Kind = "duplicate"       // an event ID is stored more than once
	WrongStream    Kind = "wrong-stream"    // an acknowledged event is stored in another stream
	VersionGap     Kind = "version-gap"     // a stream's versions are not 1, 2, 3, ...
	Order          Kind = "order"           // global positions do not strictly increase
	PartialBatch   Kind = "partial-batch"   // part of a batch is stored, or not contiguously in order
	Phantom        Kind = "phantom"         // a stored event no writer attempted
	AckMismatch    Kind = "ack-mismatch"    // an AppendResult disagrees with the store
	StreamMismatch Kind = "stream-mismatch" // Read(stream) disagrees with Read(AllStreams)
	WatchGap       Kind = "watch-gap"       // a watcher skipped an event
	WatchDuplicate Kind = "watch-duplicate" // a watcher yielded an event twice
	WatchWrong     Kind = "watch-wrong"     // a watcher yielded an event out of order, unknown or different
	Doubled        Kind = "doubled"         // an operation of the commit workload is stored more than once
	FalseConflict  Kind = "false-conflict"  // an operation refused with a conflict is stored
)

// Violation is one broken guarantee.
type Violation struct {
	Kind   Kind
	Detail string
}

func (v Violation) String() string { return string(v.Kind) + ": " + v.Detail }

// Check verifies in against the guarantees concepts.md states and returns
// every violation found (nil when there is none):
//
//   - every acknowledged event is stored exactly once, in its stream, and
//     the acknowledgement's version and position agree with the store;
//   - every stored event belongs to an attempted batch, and every batch is
//     stored whole (all of its events, at consecutive versions in batch
//     order) or not at all;
//   - each stream's versions are 1, 2, 3, ... in position order, and
//     Read(stream) returns exactly that stream's events of Read(AllStreams);
//   - global positions strictly increase;
//   - every watcher yielded a prefix of its stream's (or the store's)
//     order: no gap, no duplicate, nothing out of order.
func Check(in Input) []Violation {
	var out []Violation
	report := func(k Kind, format string, args ...any) {
		out = append(out, Violation{Kind: k, Detail: fmt.Sprintf(format, args...)})
	}

	// Index the store by event ID; check positions and versions.
	byID := make(map[string]eventstore.Recorded, len(in.All))
	perStream := make(map[string][]eventstore.Recorded)
	for i, r := range in.All {
		if i > 0 && r.Position <= in.All[i-1].Position {
			report(Order, "position %d (id %q) follows position %d", r.Position, r.ID, in.All[i-1].Position)
		}
		if prev, dup := byID[r.ID]; dup {
			report(Duplicate, "id %q stored at %s@%d (pos %d) and %s@%d (pos %d)", r.ID, prev.StreamID, prev.Version, prev.Position, r.StreamID, r.Version, r.Position)
		} else {
			byID[r.ID] = r
		}
		perStream[r.StreamID] = append(perStream[r.StreamID], r)
	}
	streams := make([]string, 0, len(perStream))
	for s := range perStream {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	for _, s := range streams {
		for i, r := range perStream[s] {
			if r.Version != uint64(i+1) {
				report(VersionGap, "stream %q: event %d (id %q, pos %d) has version %d", s, i+1, r.ID, r.Position, r.Version)
				break
			}
		}
	}
	for s, got := range in.Streams {
		want := perStream[s]
		if len(got) != len(want) {
			report(StreamMismatch, "stream %q: Read(stream) has %d events, Read(AllStreams) %d", s, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Version != want[i].Version || got[i].Position != want[i].Position {
				report(StreamMismatch, "stream %q event %d: Read(stream) %q v%d p%d, Read(AllStreams) %q v%d p%d",
					s, i, got[i].ID, got[i].Version, got[i].Position, want[i].ID, want[i].Version, want[i].Position)
				break
			}
		}
	}

	// Batches: whole or nothing, contiguous, in order; no phantoms.
	attempted := make(map[string]bool)
	for _, b := range in.Intents {
		stored := 0
		for _, id := range b.IDs {
			attempted[id] = true
			if _, ok := byID[id]; ok {
				stored++
			}
		}
		if stored != 0 && stored != len(b.IDs) {
			report(PartialBatch, "batch %v of stream %q: %d of %d events stored", b.IDs, b.Stream, stored, len(b.IDs))
			continue
		}
		if stored == 0 {
			continue
		}
		first := byID[b.IDs[0]]
		for i, id := range b.IDs {
			r := byID[id]
			if r.StreamID != b.Stream || r.Version != first.Version+uint64(i) {
				report(PartialBatch, "batch %v of stream %q: event %q stored at %s@%d, want %s@%d",
					b.IDs, b.Stream, id, r.StreamID, r.Version, b.Stream, first.Version+uint64(i))
				break
			}
		}
	}
	for _, r := range in.All {
		if !attempted[r.ID] {
			report(Phantom, "stored event %q (%s@%d, pos %d) was never appended", r.ID, r.StreamID, r.Version, r.Position)
		}
	}

	// Acknowledged appends: stored exactly once, where and as reported.
	for _, a := range in.Acks {
		if len(a.IDs) == 0 {
			continue
		}
		var last eventstore.Recorded
		ok := true
		for _, id := range a.IDs {
			r, found := byID[id]
			switch {
			case !found:
				report(Loss, "acknowledged event %q of stream %q (ack v%d p%d) is not stored", id, a.Stream, a.Version, a.Position)
				ok = false
			case r.StreamID != a.Stream:
				report(WrongStream, "acknowledged event %q of stream %q is stored in %q", id, a.Stream, r.StreamID)
				ok = false
			default:
				last = r
			}
		}
		if !ok {
			continue
		}
		switch {
		case a.Appended+a.Duplicates != len(a.IDs):
			report(AckMismatch, "ack of %v: %d appended + %d duplicates != %d events", a.IDs, a.Appended, a.Duplicates, len(a.IDs))
		case a.Appended == len(a.IDs) && (a.Version != last.Version || a.Position != last.Position):
			report(AckMismatch, "ack of %v: reported v%d p%d, stored last event at v%d p%d", a.IDs, a.Version, a.Position, last.Version, last.Position)
		case a.Version < last.Version:
			report(AckMismatch, "ack of %v: reported v%d, below the stored v%d of its last event", a.IDs, a.Version, last.Version)
		}
	}

	// Watchers: each log is a prefix of the order of what it watched.
	for _, w := range in.Watches {
		want := in.All
		if w.Stream != eventstore.AllStreams {
			want = perStream[w.Stream]
		}
		index := make(map[string]int, len(want))
		for i, r := range want {
			index[r.ID] = i
		}
		for i, s := range w.Seen {
			if i < len(want) && s.ID == want[i].ID {
				r := want[i]
				if s.Position != r.Position || s.Version != r.Version || s.Stream != r.StreamID {
					report(WatchWrong, "watcher %s, event %d (%q): saw %s@%d p%d, stored %s@%d p%d", w.Name, i, s.ID, s.Stream, s.Version, s.Position, r.StreamID, r.Version, r.Position)
					break
				}
				continue
			}
			j, known := index[s.ID]
			switch {
			case known && j < i:
				report(WatchDuplicate, "watcher %s, event %d: %q again (first seen as event %d)", w.Name, i, s.ID, j)
			case known && j > i:
				report(WatchGap, "watcher %s, event %d: %q, skipping %d event(s) from %q", w.Name, i, s.ID, j-i, want[i].ID)
			case i >= len(want):
				report(WatchWrong, "watcher %s, event %d: %q beyond the %d stored", w.Name, i, s.ID, len(want))
			default:
				report(WatchWrong, "watcher %s, event %d: %q is not in what it watched (want %q)", w.Name, i, s.ID, want[i].ID)
			}
			break
		}
	}
	return out
}
