package torture

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

func rec(pos uint64, stream string, version uint64, id string) eventstore.Recorded {
	return eventstore.Recorded{Event: eventstore.Event{ID: id, Type: "t"}, StreamID: stream, Version: version, Position: pos}
}

func seen(rs ...eventstore.Recorded) []Seen {
	out := make([]Seen, len(rs))
	for i, r := range rs {
		out[i] = Seen{Position: r.Position, Stream: r.StreamID, Version: r.Version, ID: r.ID}
	}
	return out
}

// validInput is a history without violations: two acknowledged batches,
// one unacknowledged batch that was stored (the kill came between commit
// and ack line), one that was not, and two watchers part-way through.
func validInput() Input {
	all := []eventstore.Recorded{
		rec(1, "a", 1, "a1"), rec(2, "a", 2, "a2"), rec(3, "b", 1, "b1"),
		rec(5, "a", 3, "a3"), rec(6, "a", 4, "a4"),
	}
	return Input{
		All: all,
		Streams: map[string][]eventstore.Recorded{
			"a": {all[0], all[1], all[3], all[4]},
			"b": {all[2]},
		},
		Intents: []Batch{
			{"a", []string{"a1", "a2"}}, {"b", []string{"b1"}},
			{"a", []string{"a3", "a4"}}, {"b", []string{"b2", "b3"}},
		},
		Acks: []Ack{
			{Batch: Batch{"a", []string{"a1", "a2"}}, Version: 2, Position: 2, Appended: 2},
			{Batch: Batch{"b", []string{"b1"}}, Version: 1, Position: 3, Appended: 1},
			// An idempotent retry of the first batch, after a3 and a4.
			{Batch: Batch{"a", []string{"a1", "a2"}}, Version: 4, Duplicates: 2},
		},
		Watches: []WatchLog{
			{Name: "all", Stream: eventstore.AllStreams, Seen: seen(all[:3]...)},
			{Name: "a", Stream: "a", Seen: seen(all[0], all[1], all[3])},
		},
	}
}

func kinds(vs []Violation) []Kind {
	var ks []Kind
	for _, v := range vs {
		if !slices.Contains(ks, v.Kind) {
			ks = append(ks, v.Kind)
		}
	}
	return ks
}

func TestCheckValid(t *testing.T) {
	if got := Check(validInput()); len(got) != 0 {
		t.Fatalf("Check of a valid history reported %v", got)
	}
}

// TestCheckCatchesInjected injects one violation at a time into a valid
// history and checks the checker reports exactly that kind.
func TestCheckCatchesInjected(t *testing.T) {
	for _, c := range []struct {
		name   string
		inject func(in *Input)
		want   []Kind
	}{
		{"LostAck", func(in *Input) {
			// b1 (acknowledged) vanished from the store and from Read("b").
			in.All = slices.Delete(in.All, 2, 3)
			delete(in.Streams, "b")
			in.Watches = in.Watches[1:]
		}, []Kind{Loss}},
		{"DuplicateEvent", func(in *Input) {
			in.All = append(in.All, rec(7, "b", 2, "b1"))
			in.Streams["b"] = append(in.Streams["b"], in.All[5])
		}, []Kind{Duplicate}},
		{"VersionGap", func(in *Input) {
			in.All[3].Version, in.All[4].Version = 4, 5
			in.Streams["a"][2].Version, in.Streams["a"][3].Version = 4, 5
			in.Watches = in.Watches[:1]
		}, []Kind{VersionGap}},
		{"PositionsReordered", func(in *Input) {
			in.All[1].Position, in.All[2].Position = 3, 2
			in.Streams["a"][1].Position, in.Streams["b"][0].Position = 3, 2
			in.Watches, in.Acks = nil, nil
		}, []Kind{Order}},
		{"PartialUnackedBatch", func(in *Input) {
			// Only a4's batch-mate a3 is stored.
			in.All = in.All[:4]
			in.Streams["a"] = in.Streams["a"][:3]
		}, []Kind{PartialBatch}},
		{"BatchNotContiguous", func(in *Input) {
			// a3 and a4 stored in reverse order.
			in.All[3].ID, in.All[4].ID = "a4", "a3"
			in.Streams["a"][2].ID, in.Streams["a"][3].ID = "a4", "a3"
			in.Watches = in.Watches[:1]
		}, []Kind{PartialBatch}},
		{"Phantom", func(in *Input) {
			in.All = append(in.All, rec(7, "b", 2, "zz"))
			in.Streams["b"] = append(in.Streams["b"], in.All[5])
		}, []Kind{Phantom}},
		{"AckWrongVersion", func(in *Input) { in.Acks[1].Version = 2 }, []Kind{AckMismatch}},
		{"AckWrongStream", func(in *Input) { in.Acks[1].Stream = "a" }, []Kind{WrongStream}},
		{"StreamReadDisagrees", func(in *Input) { in.Streams["a"] = in.Streams["a"][1:] }, []Kind{StreamMismatch}},
		{"WatcherGap", func(in *Input) {
			in.Watches[0].Seen = slices.Delete(in.Watches[0].Seen, 1, 2)
		}, []Kind{WatchGap}},
		{"WatcherDuplicateAfterResume", func(in *Input) {
			// The watcher resumed from one position too early.
			in.Watches[1].Seen = append(in.Watches[1].Seen[:2:2], in.Watches[1].Seen[1:]...)
		}, []Kind{WatchDuplicate}},
		{"WatcherWrongPosition", func(in *Input) { in.Watches[0].Seen[2].Position = 4 }, []Kind{WatchWrong}},
		{"WatcherUnknownEvent", func(in *Input) {
			in.Watches[1].Seen = append(in.Watches[1].Seen, Seen{Position: 9, Stream: "a", Version: 4, ID: "x"})
		}, []Kind{WatchWrong}},
		{"WatcherOtherStream", func(in *Input) {
			in.Watches[1].Seen[2] = in.Watches[0].Seen[2]
		}, []Kind{WatchWrong}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := validInput()
			c.inject(&in)
			got := Check(in)
			if diff := cmp.Diff(c.want, kinds(got)); diff != "" {
				t.Errorf("violation kinds (-want +got):\n%s\nreport: %v", diff, got)
			}
		})
	}
}
