package torture

import (
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

func deposit(pos uint64, stream string, version uint64, id string) eventstore.Recorded {
	r := rec(pos, stream, version, id)
	r.Data = []byte(strconv.FormatInt(Amount(id), 10))
	return r
}

func delivered(rs ...eventstore.Recorded) []Delivered {
	out := make([]Delivered, len(rs))
	for i, r := range rs {
		out[i] = Delivered{Stream: r.StreamID, Version: r.Version, Position: r.Position}
	}
	return out
}

// validSubInput is a run without violations: m1 handles a and b, is
// killed after logging a batch it never committed, m2 takes over and
// delivers that batch again, then m1 (restarted) gets stream b back.
func validSubInput() SubInput {
	all := []eventstore.Recorded{
		deposit(1, "a", 1, "a1"), deposit(2, "b", 1, "b1"), deposit(3, "a", 2, "a2"),
		deposit(4, "a", 3, "a3"), deposit(5, "b", 2, "b2"), deposit(6, "a", 4, "a4"),
		deposit(7, "b", 3, "b3"),
	}
	sum := func(ids ...string) int64 {
		var n int64
		for _, id := range ids {
			n += Amount(id)
		}
		return n
	}
	return SubInput{
		All: all,
		ReadModel: map[string]ReadModelRow{
			"a": {Count: 4, Sum: sum("a1", "a2", "a3", "a4"), Last: 4},
			"b": {Count: 3, Sum: sum("b1", "b2", "b3"), Last: 3},
		},
		Logs: []DeliveryLog{
			{Name: "deliveries-m1.log", Batches: []DeliveryBatch{
				{Member: "m1", Start: 100, End: 110, Events: delivered(all[0], all[1], all[2])},
				{Member: "m1", Start: 120, End: 130, Events: delivered(all[3], all[4])}, // not committed: killed
				{Member: "m1", Start: 300, End: 310, Events: delivered(all[6])},
			}},
			{Name: "deliveries-m2.log", Batches: []DeliveryBatch{
				{Member: "m2", Start: 200, End: 210, Events: delivered(all[3], all[4], all[5])}, // redelivery from the checkpoint
			}},
		},
		Subs: []subscription.Info{{Name: LogSub, Position: 7, Head: 7}, {Name: ReadModelSub, Position: 7, Head: 7}},
	}
}

func TestCheckSubsValid(t *testing.T) {
	if v := CheckSubs(validSubInput(), LogSub, ReadModelSub); len(v) != 0 {
		t.Fatalf("violations in a valid run: %v", v)
	}
}

// TestCheckSubsInjected injects each kind of violation into the valid run
// and checks that CheckSubs reports it, and only it.
func TestCheckSubsInjected(t *testing.T) {
	for _, c := range []struct {
		name   string
		inject func(in *SubInput)
		want   []Kind
	}{
		{"skipped event", func(in *SubInput) {
			// b3 is delivered once only: drop its line.
			in.Logs[0].Batches = in.Logs[0].Batches[:2]
		}, []Kind{Undelivered}},
		{"double-applied event", func(in *SubInput) {
			row := in.ReadModel["a"]
			row.Count++
			row.Sum += Amount("a4")
			in.ReadModel["a"] = row
		}, []Kind{ReadModelWrong}},
		{"lost read model row", func(in *SubInput) { delete(in.ReadModel, "b") }, []Kind{ReadModelWrong}},
		{"wrong amount", func(in *SubInput) { in.All[2].Data = []byte("0") }, []Kind{BadAmount, ReadModelWrong}},
		{"overlap", func(in *SubInput) {
			// m2's batch (a and b) begins before m1's second batch ends.
			in.Logs[1].Batches[0].Start = 125
		}, []Kind{Overlap, Overlap}},
		{"gap", func(in *SubInput) {
			// m2 begins stream a at v4: v3 was delivered by no earlier
			// batch (m1's second batch is dropped, so b2 is delivered
			// by m2 alone and nothing else changes).
			in.Logs[0].Batches = slices.Delete(in.Logs[0].Batches, 1, 2)
			in.Logs[1].Batches[0].Events = delivered(in.All[4], in.All[5])
			in.Logs = append(in.Logs, DeliveryLog{Name: "deliveries-m3.log", Batches: []DeliveryBatch{
				{Member: "m3", Start: 400, End: 410, Events: delivered(in.All[3])},
			}})
		}, []Kind{DeliveryGap}},
		{"out of order in a batch", func(in *SubInput) {
			ev := in.Logs[0].Batches[0].Events
			ev[0], ev[1] = ev[1], ev[0]
		}, []Kind{DeliveryOrder}},
		{"wrong delivery", func(in *SubInput) { in.Logs[0].Batches[2].Events[0].Version = 4 }, []Kind{DeliveryWrong, Undelivered, DeliveryGap}},
		{"lag", func(in *SubInput) {
			in.Subs[1].Position, in.Subs[1].Lag = 5, 2
		}, []Kind{Lagging}},
		{"subscription missing", func(in *SubInput) { in.Subs = in.Subs[:1] }, []Kind{Lagging}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := validSubInput()
			c.inject(&in)
			var got []Kind
			for _, v := range CheckSubs(in, LogSub, ReadModelSub) {
				got = append(got, v.Kind)
				t.Log(v)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}
