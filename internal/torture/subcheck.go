package torture

import (
	"fmt"
	"slices"
	"sort"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// Delivery is one line of a delivery log: an event handed to the log
// subscription's handler by Member, in a batch whose handling began at
// Start and ended at End (Unix nanoseconds).
type Delivery struct {
	Member   string `json:"m"`
	Stream   string `json:"s"`
	Version  uint64 `json:"v"`
	Position uint64 `json:"p"`
	Start    int64  `json:"t0"`
	End      int64  `json:"t1"`
}

// Delivered is an event of a delivered batch.
type Delivered struct {
	Stream   string
	Version  uint64
	Position uint64
}

// DeliveryBatch is one call of the log subscription's handler.
type DeliveryBatch struct {
	Member     string
	Start, End int64
	Events     []Delivered
}

// DeliveryLog is one member's delivery log, across its restarts.
type DeliveryLog struct {
	Name    string
	Batches []DeliveryBatch
}

// ReadModelRow is the read model of one stream: how many events were
// applied, the sum of their amounts, and the version last applied.
type ReadModelRow struct {
	Count, Sum int64
	Last       uint64
}

// SubInput is what CheckSubs compares.
type SubInput struct {
	// All is Read(AllStreams) of the final store.
	All []eventstore.Recorded
	// ReadModel is the final read model, by stream.
	ReadModel map[string]ReadModelRow
	// Logs are the members' delivery logs.
	Logs []DeliveryLog
	// Subs is subscription.List of the final store.
	Subs []subscription.Info
}

// The kinds of violation CheckSubs reports.
const (
	ReadModelWrong Kind = "readmodel"      // the read model differs from a recomputation from the store
	BadAmount      Kind = "bad-amount"     // a stored event's Data is not the amount its ID gives
	Undelivered    Kind = "undelivered"    // a stored event is in no delivery log
	DeliveryWrong  Kind = "delivery-wrong" // a delivered event differs from the stored one at its position
	Overlap        Kind = "overlap"        // two members handled events of one stream at overlapping times
	DeliveryOrder  Kind = "delivery-order" // a batch's events are not in position order, or a stream's not at consecutive versions
	DeliveryGap    Kind = "delivery-gap"   // a batch skipped versions of a stream no earlier batch delivered
	Lagging        Kind = "lag"            // a subscription's lag is not 0 after the run
)

// CheckSubs verifies a subscription run and returns every violation found
// (nil when there is none):
//
//   - the read model (NewTx, exactly once) equals a recomputation from the
//     store's events: per stream, the count of events, the sum of their
//     amounts and the last version; every event's Data is the amount its
//     ID gives;
//   - every stored event was delivered to the log subscription (New, at
//     least once) at least once, as stored (stream and version at its
//     position);
//   - no two members handled events of one stream at overlapping times:
//     the [Start, End] intervals of two batches of different members that
//     hold events of the same stream do not intersect;
//   - order: within a batch, positions increase, and each stream's events
//     are at consecutive increasing versions; across batches, a stream's
//     events may be delivered again (after a kill or a lost lease, from
//     the last checkpoint) but none is skipped: with every batch holding
//     events of the stream taken in order of Start (by any member), a
//     batch's first version of the stream is at most 1 + the highest
//     version of the stream an earlier batch delivered;
//   - every subscription of wantSubs is listed with lag 0.
func CheckSubs(in SubInput, wantSubs ...string) []Violation {
	var out []Violation
	report := func(k Kind, format string, args ...any) {
		out = append(out, Violation{Kind: k, Detail: fmt.Sprintf(format, args...)})
	}

	// (a) The read model against a recomputation from the store.
	want := map[string]ReadModelRow{}
	byPos := make(map[uint64]eventstore.Recorded, len(in.All))
	for _, r := range in.All {
		byPos[r.Position] = r
		amount, err := ParseAmount(r.Data)
		if err != nil || amount != Amount(r.ID) {
			report(BadAmount, "event %q (%s@%d, pos %d): data %q, want amount %d", r.ID, r.StreamID, r.Version, r.Position, r.Data, Amount(r.ID))
		}
		row := want[r.StreamID]
		row.Count++
		row.Sum += amount
		row.Last = r.Version
		want[r.StreamID] = row
	}
	for _, s := range sortedKeys(want, in.ReadModel) {
		w, g := want[s], in.ReadModel[s]
		if w != g {
			report(ReadModelWrong, "stream %q: read model count %d sum %d last v%d, store count %d sum %d last v%d",
				s, g.Count, g.Sum, g.Last, w.Count, w.Sum, w.Last)
		}
	}

	// (b) Every stored event delivered at least once, as stored.
	delivered := map[uint64]bool{}
	for _, l := range in.Logs {
		for _, b := range l.Batches {
			for _, d := range b.Events {
				if r, ok := byPos[d.Position]; !ok || r.StreamID != d.Stream || r.Version != d.Version {
					report(DeliveryWrong, "%s, batch of %s at %d: delivered %s@%d at pos %d, stored %s@%d",
						l.Name, b.Member, b.Start, d.Stream, d.Version, d.Position, r.StreamID, r.Version)
					continue
				}
				delivered[d.Position] = true
			}
		}
	}
	for _, r := range in.All {
		if !delivered[r.Position] {
			report(Undelivered, "event %q (%s@%d, pos %d) is in no delivery log", r.ID, r.StreamID, r.Version, r.Position)
		}
	}

	// (d) Order within each batch.
	type span struct {
		log, member string
		start, end  int64
		first, last uint64 // the stream's versions in the batch
	}
	spans := map[string][]span{} // stream -> batches holding it
	for _, l := range in.Logs {
		for _, b := range l.Batches {
			mine := map[string]*span{}
			var streams []string
			for i, d := range b.Events {
				if i > 0 && d.Position <= b.Events[i-1].Position {
					report(DeliveryOrder, "%s, batch of %s at %d: position %d after %d", l.Name, b.Member, b.Start, d.Position, b.Events[i-1].Position)
				}
				sp := mine[d.Stream]
				if sp == nil {
					mine[d.Stream] = &span{log: l.Name, member: b.Member, start: b.Start, end: b.End, first: d.Version, last: d.Version}
					streams = append(streams, d.Stream)
					continue
				}
				if d.Version != sp.last+1 {
					report(DeliveryOrder, "%s, batch of %s at %d: stream %q v%d after v%d", l.Name, b.Member, b.Start, d.Stream, d.Version, sp.last)
				}
				sp.last = d.Version
			}
			for _, s := range streams {
				spans[s] = append(spans[s], *mine[s])
			}
		}
	}

	// (c) No overlap between members, and (d) no gap, per stream.
	for _, s := range sortedKeys(spans, map[string]bool(nil)) {
		ss := spans[s]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		ends := map[string]span{} // member -> its batch of the stream that ends last so far
		var high uint64
		for _, sp := range ss {
			for m, prev := range ends {
				if m != sp.member && prev.end >= sp.start {
					report(Overlap, "stream %q: %s handled v%d-%d in [%d, %d] while %s handled v%d-%d in [%d, %d] (%d ns overlap)",
						s, prev.member, prev.first, prev.last, prev.start, prev.end, sp.member, sp.first, sp.last, sp.start, sp.end, prev.end-sp.start)
				}
			}
			if e, ok := ends[sp.member]; !ok || sp.end > e.end {
				ends[sp.member] = sp
			}
			if sp.first > high+1 {
				report(DeliveryGap, "stream %q: %s (%s) delivered v%d-%d at %d, but no earlier batch delivered v%d-%d",
					s, sp.member, sp.log, sp.first, sp.last, sp.start, high+1, sp.first-1)
			}
			high = max(high, sp.last)
		}
	}

	// (e) Every subscription caught up.
	for _, name := range wantSubs {
		i := slices.IndexFunc(in.Subs, func(info subscription.Info) bool { return info.Name == name })
		switch {
		case i < 0:
			report(Lagging, "subscription %q is not listed", name)
		case in.Subs[i].Lag != 0:
			info := in.Subs[i]
			report(Lagging, "subscription %q: lag %d (position %d, head %d)", name, info.Lag, info.Position, info.Head)
		}
	}
	return out
}

// sortedKeys returns the keys of a and b, sorted, without duplicates.
func sortedKeys[V, W any](a map[string]V, b map[string]W) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
