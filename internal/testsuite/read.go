package testsuite

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func readTests() []test {
	return []test{
		{"Forwards", leaf(testReadForwards)},
		{"Backwards", leaf(testReadBackwards)},
		{"Limit", leaf(testReadLimit)},
		{"Until", leaf(testReadUntil)},
		{"Paging", leaf(testReadPaging)},
		{"Omit", leaf(testReadOmit)},
		{"OmitLargeMetadata", leaf(testReadOmitLargeMetadata)},
		{"Filter/Types", leaf(testReadFilterTypes)},
		{"Filter/Metadata", testReadFilterMetadata},
		{"Filter/LimitCountsMatches", leaf(testReadFilterLimit)},
		{"Filter/MetadataKeysLiteral", leaf(testReadMetadataKeys)},
		{"AllStreams/GlobalOrder", leaf(testReadAll)},
		{"AllStreams/StreamPrefix", testReadStreamPrefix},
		{"AllStreams/Filters", leaf(testReadAllFilters)},
		{"AllStreams/Partitions", leaf(testReadPartitions)},
		{"AllStreams/CheckpointingReaderSkipsNothing", leaf(testReadCheckpointing)},
		{"MissingStream", leaf(testReadMissing)},
		{"FromPastEnd", leaf(testReadFromPastEnd)},
		{"BreakEarly", leaf(testReadBreak)},
		{"NotIterated", leaf(testReadNotIterated)},
		{"CancelledContext", leaf(testReadCancelled)},
		{"InvalidInput", testReadInvalid},
	}
}

// tenEvents appends ten events to s, "1" .. "10", and returns them.
func tenEvents(t *testing.T, s eventstore.Store, stream string) []eventstore.Recorded {
	t.Helper()
	evs := numberedData("t", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	mustAppend(t, s, stream, eventstore.NoStream, evs[:4]...)
	mustAppend(t, s, stream, eventstore.Exact(4), evs[4:]...)
	return recorded(stream, 1, evs...)
}

func reversed(in []eventstore.Recorded) []eventstore.Recorded {
	out := make([]eventstore.Recorded, len(in))
	for i, r := range in {
		out[len(in)-1-i] = r
	}
	return out
}

func testReadForwards(t *testing.T, s eventstore.Store) {
	all := tenEvents(t, s, "s")
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "other"))
	for _, c := range []struct {
		from eventstore.Start
		want []eventstore.Recorded
	}{
		{eventstore.FromStart(), all},
		{eventstore.After(0), all},
		{eventstore.After(3), all[3:]},
		{eventstore.After(9), all[9:]},
		{eventstore.After(10), nil},
		{eventstore.After(1000), nil},
		{eventstore.FromEnd(), nil},
	} {
		got := readAll(t, s, "s", eventstore.ReadOptions{From: c.from})
		wantEvents(t, fmt.Sprintf("Read from %v", c.from), c.want, got)
		checkPositions(t, got, false)
	}
}

func testReadBackwards(t *testing.T, s eventstore.Store) {
	all := tenEvents(t, s, "s")
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "other"))
	for _, c := range []struct {
		name string
		from eventstore.Start
		want []eventstore.Recorded
	}{
		{"FromStart", eventstore.FromStart(), reversed(all)},
		{"FromEnd", eventstore.FromEnd(), reversed(all)},
		{"AfterLast", eventstore.After(11), reversed(all)},
		{"AfterVersion", eventstore.After(5), reversed(all[:4])},
		{"AfterSecond", eventstore.After(2), all[:1]},
		{"AfterFirst", eventstore.After(1), nil},
		{"AfterBeyondEnd", eventstore.After(50), reversed(all)},
	} {
		got := readAll(t, s, "s", eventstore.ReadOptions{From: c.from, Backwards: true})
		wantEvents(t, fmt.Sprintf("Read backwards %s (from %v)", c.name, c.from), c.want, got)
		checkPositions(t, got, true)
	}
}

func testReadLimit(t *testing.T, s eventstore.Store) {
	all := tenEvents(t, s, "s")
	for _, c := range []struct {
		opts eventstore.ReadOptions
		want []eventstore.Recorded
	}{
		{eventstore.ReadOptions{Limit: 3}, all[:3]},
		{eventstore.ReadOptions{From: eventstore.After(1), Limit: 3}, all[1:4]},
		{eventstore.ReadOptions{From: eventstore.After(8), Limit: 5}, all[8:]},
		{eventstore.ReadOptions{Limit: 100}, all},
		{eventstore.ReadOptions{Limit: 1, Backwards: true}, all[9:]},
		{eventstore.ReadOptions{Limit: 3, Backwards: true}, reversed(all[7:])},
		{eventstore.ReadOptions{From: eventstore.After(6), Limit: 2, Backwards: true}, reversed(all[3:5])},
		{eventstore.ReadOptions{From: eventstore.After(3), Limit: 5, Backwards: true}, reversed(all[:2])},
	} {
		wantEvents(t, fmt.Sprintf("Read %+v", c.opts), c.want, readAll(t, s, "s", c.opts))
	}
}

func testReadFilterTypes(t *testing.T, s eventstore.Store) {
	evs := []eventstore.Event{ev("A", "1"), ev("B", "2"), ev("C", "3"), ev("A", "4"), ev("B", "5"), ev("Ab", "6"), ev("a", "7")}
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	all := recorded("s", 1, evs...)
	pick := func(idx ...int) []eventstore.Recorded {
		var out []eventstore.Recorded
		for _, i := range idx {
			out = append(out, all[i])
		}
		return out
	}
	for _, c := range []struct {
		opts eventstore.ReadOptions
		want []eventstore.Recorded
	}{
		{eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"A"}}}, pick(0, 3)},
		{eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"A", "C"}}}, pick(0, 2, 3)},
		{eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"missing"}}}, nil},
		{eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"B"}}, Backwards: true}, pick(4, 1)},
		{eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"A", "B"}}, From: eventstore.After(2)}, pick(3, 4)},
	} {
		wantEvents(t, fmt.Sprintf("Read %+v", c.opts), c.want, readAll(t, s, "s", c.opts))
	}
}

// metadataEvents are the events the metadata filter cases read.
var metadataEvents = []eventstore.Event{
	{Type: "A", Data: []byte("0"), Metadata: map[string]string{"tenant": "t1", "user": "ann"}},
	{Type: "B", Data: []byte("1"), Metadata: map[string]string{"tenant": "t2", "user": "bob"}},
	{Type: "A", Data: []byte("2"), Metadata: map[string]string{"tenant": "t10"}},
	{Type: "A", Data: []byte("3")},
	{Type: "B", Data: []byte("4"), Metadata: map[string]string{"tenant": "T1", "user": "ann"}},
	{Type: "A", Data: []byte("5"), Metadata: map[string]string{"tenant": "t1", "user": "cid"}},
	{Type: "A", Data: []byte("6"), Metadata: map[string]string{"tenant": "t%1", "other": "t1"}},
	{Type: "A", Data: []byte("7"), Metadata: map[string]string{"tenant": "t_1"}},
	{Type: "A", Data: []byte("8"), Metadata: map[string]string{"tenant": ""}},
	{Type: "A", Data: []byte("9"), Metadata: map[string]string{"tenant": `t\1`}},
}

func testReadFilterMetadata(t *testing.T, newStore Factory) {
	eq, in, prefix := eventstore.MetadataEquals, eventstore.MetadataOneOf, eventstore.MetadataHasPrefix
	type mf = eventstore.MetadataFilter
	for _, c := range []struct {
		name    string
		filter  eventstore.Filter
		indexes []int
	}{
		{"Equals", eventstore.Filter{Metadata: []mf{eq("tenant", "t1")}}, []int{0, 5}},
		{"EqualsEmptyValue", eventstore.Filter{Metadata: []mf{eq("tenant", "")}}, []int{8}},
		{"EqualsMissingKey", eventstore.Filter{Metadata: []mf{eq("nokey", "t1")}}, nil},
		{"OneOf", eventstore.Filter{Metadata: []mf{in("tenant", "t1", "t2")}}, []int{0, 1, 5}},
		{"OneOfSingle", eventstore.Filter{Metadata: []mf{in("user", "bob")}}, []int{1}},
		{"Prefix", eventstore.Filter{Metadata: []mf{prefix("tenant", "t1")}}, []int{0, 2, 5}},
		{"PrefixEmpty", eventstore.Filter{Metadata: []mf{prefix("user", "")}}, []int{0, 1, 4, 5}},
		{"PrefixPercentIsLiteral", eventstore.Filter{Metadata: []mf{prefix("tenant", "t%")}}, []int{6}},
		{"PrefixUnderscoreIsLiteral", eventstore.Filter{Metadata: []mf{prefix("tenant", "t_")}}, []int{7}},
		{"PrefixBackslashIsLiteral", eventstore.Filter{Metadata: []mf{prefix("tenant", `t\`)}}, []int{9}},
		{"TwoConditions", eventstore.Filter{Metadata: []mf{eq("tenant", "t1"), eq("user", "ann")}}, []int{0}},
		{"WithTypes", eventstore.Filter{Types: []string{"B"}, Metadata: []mf{eq("user", "ann")}}, []int{4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			mustAppend(t, s, "s", eventstore.NoStream, metadataEvents...)
			all := recorded("s", 1, metadataEvents...)
			var want []eventstore.Recorded
			for _, i := range c.indexes {
				want = append(want, all[i])
			}
			wantEvents(t, "Read", want, readAll(t, s, "s", eventstore.ReadOptions{Filter: c.filter}))
			wantEvents(t, "Read backwards", reversed(want), readAll(t, s, "s", eventstore.ReadOptions{Filter: c.filter, Backwards: true}))
			wantEvents(t, "Read(AllStreams)", want, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: c.filter}))
		})
	}
}

// testReadFilterLimit checks that Limit counts the events that match, not
// the events scanned: the filter runs before the limit.
func testReadFilterLimit(t *testing.T, s eventstore.Store) {
	var evs []eventstore.Event
	for i := range 20 {
		typ := "skip"
		if i%5 == 4 {
			typ = "keep"
		}
		evs = append(evs, ev(typ, fmt.Sprint(i)))
	}
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	all := recorded("s", 1, evs...)
	keep := eventstore.Filter{Types: []string{"keep"}}
	wantEvents(t, "Read limit 2", []eventstore.Recorded{all[4], all[9]},
		readAll(t, s, "s", eventstore.ReadOptions{Filter: keep, Limit: 2}))
	wantEvents(t, "Read backwards limit 3", []eventstore.Recorded{all[19], all[14], all[9]},
		readAll(t, s, "s", eventstore.ReadOptions{Filter: keep, Limit: 3, Backwards: true}))
	wantEvents(t, "Read(AllStreams) limit 2 from 6", []eventstore.Recorded{all[9], all[14]},
		readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: keep, Limit: 2, From: eventstore.After(readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(5), Limit: 1})[0].Position - 1)}))
}

// interleaved appends to three streams in turn and returns the events in
// global order.
func interleaved(t *testing.T, s eventstore.Store) []eventstore.Recorded {
	t.Helper()
	var want []eventstore.Recorded
	for round := range 3 {
		for _, id := range []string{"b", "a", "c"} {
			evs := numbered(2, "t", fmt.Sprintf("%s-%d", id, round))
			res := mustAppend(t, s, id, eventstore.Any, evs...)
			want = append(want, recorded(id, res.Version-1, evs...)...)
		}
	}
	return want
}

func testReadAll(t *testing.T, s eventstore.Store) {
	want := interleaved(t, s)
	got := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	wantEvents(t, "Read(AllStreams)", want, got)
	checkPositions(t, got, false)
	if len(got) != len(want) {
		t.FailNow()
	}
	// After is exclusive; positions need not be dense, so ask for one that
	// may fall in a gap too.
	p := got[5].Position
	wantEvents(t, "Read(AllStreams) from a position", got[5:], readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(p - 1)}))
	wantEvents(t, "Read(AllStreams) from past a position", got[6:], readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(p)}))
	wantEvents(t, "Read(AllStreams) limit", got[5:8], readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(p - 1), Limit: 3}))
	gotBack := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Backwards: true})
	wantEvents(t, "Read(AllStreams) backwards", reversed(got), gotBack)
	checkPositions(t, gotBack, true)
	wantEvents(t, "Read(AllStreams) backwards from a position", reversed(got[:6]),
		readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(p + 1), Backwards: true}))
	wantEvents(t, "Read(AllStreams) backwards limit", reversed(got[3:6]),
		readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(p + 1), Backwards: true, Limit: 3}))
	last := got[len(got)-1].Position
	if rest := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(last)}); len(rest) != 0 {
		t.Errorf("Read(AllStreams) past the last position: %d events, want none", len(rest))
	}
	// Positions in AllStreams reads equal those in stream reads.
	if diff := cmp.Diff(filterStream(got, "a"), readAll(t, s, "a", eventstore.ReadOptions{})); diff != "" {
		t.Errorf("stream a read alone differs from its part of the global read (-global +stream):\n%s", diff)
	}
}

func filterStream(in []eventstore.Recorded, stream string) []eventstore.Recorded {
	var out []eventstore.Recorded
	for _, r := range in {
		if r.StreamID == stream {
			out = append(out, r)
		}
	}
	return out
}

// prefixStreams are stream IDs chosen to catch a prefix filter built with
// LIKE without escaping its wildcards.
var prefixStreams = []string{
	"order-1", "order-2", "orders", "order_x", "orderXx", "order%y", "orderZZ%", `order\z`, "ORDER-3", "user-1", "o", "or",
}

func testReadStreamPrefix(t *testing.T, newStore Factory) {
	for _, c := range []struct {
		name   string
		prefix string
		want   []string
	}{
		{"Dash", "order-", []string{"order-1", "order-2"}},
		{"Word", "order", []string{"order-1", "order-2", "orders", "order_x", "orderXx", "order%y", "orderZZ%", `order\z`}},
		{"Underscore", "order_", []string{"order_x"}},
		{"Percent", "order%", []string{"order%y"}},
		{"Backslash", `order\`, []string{`order\z`}},
		{"WholeID", "order-1", []string{"order-1"}},
		{"Short", "o", []string{"order-1", "order-2", "orders", "order_x", "orderXx", "order%y", "orderZZ%", `order\z`, "o", "or"}},
		{"NoMatch", "x", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			var all []eventstore.Recorded
			for _, id := range prefixStreams {
				mustAppend(t, s, id, eventstore.NoStream, ev("t", id))
				all = append(all, recorded(id, 1, ev("t", id))...)
			}
			var want []eventstore.Recorded
			for _, r := range all {
				for _, w := range c.want {
					if r.StreamID == w {
						want = append(want, r)
					}
				}
			}
			f := eventstore.Filter{StreamPrefix: c.prefix}
			wantEvents(t, fmt.Sprintf("Read(AllStreams, prefix %q)", c.prefix), want,
				readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f}))
			wantEvents(t, fmt.Sprintf("Read(AllStreams, prefix %q) backwards", c.prefix), reversed(want),
				readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f, Backwards: true}))
		})
	}
}

func testReadAllFilters(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "acc-1", eventstore.NoStream, ev("opened", "1"), eventstore.Event{Type: "deposited", Data: []byte("2"), Metadata: map[string]string{"user": "ann"}})
	mustAppend(t, s, "acc-2", eventstore.NoStream, ev("opened", "3"))
	mustAppend(t, s, "user-1", eventstore.NoStream, eventstore.Event{Type: "deposited", Data: []byte("4"), Metadata: map[string]string{"user": "ann"}})
	mustAppend(t, s, "acc-1", eventstore.Exact(2), eventstore.Event{Type: "deposited", Data: []byte("5"), Metadata: map[string]string{"user": "bob"}})
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != 5 {
		t.Fatalf("read %d events, want 5", len(all))
	}
	f := eventstore.Filter{StreamPrefix: "acc-", Types: []string{"deposited"}}
	wantEvents(t, "prefix and type", []eventstore.Recorded{all[1], all[4]}, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f}))
	f.Metadata = []eventstore.MetadataFilter{eventstore.MetadataEquals("user", "ann")}
	wantEvents(t, "prefix, type and metadata", []eventstore.Recorded{all[1]}, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f}))
	wantEvents(t, "prefix from a position", []eventstore.Recorded{all[4]},
		readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(all[2].Position - 1), Filter: eventstore.Filter{StreamPrefix: "acc-1"}}))
}

// testReadUntil checks ReadOptions.Until, the bound on the side a read
// goes to, on a stream (versions) and on AllStreams (positions).
func testReadUntil(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "u", eventstore.NoStream, ev("t", "1"), ev("t", "2"), ev("t", "3"), ev("t", "4"))
	mustAppend(t, s, "v", eventstore.NoStream, ev("t", "5"))
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	stream := all[:4]
	for _, c := range []struct {
		name   string
		stream string
		opts   eventstore.ReadOptions
		want   []eventstore.Recorded
	}{
		{"StreamForwards", "u", eventstore.ReadOptions{Until: 2}, stream[:2]},
		{"StreamForwardsAfter", "u", eventstore.ReadOptions{From: eventstore.After(1), Until: 3}, stream[1:3]},
		{"StreamBackwards", "u", eventstore.ReadOptions{Backwards: true, Until: 3}, reversed(stream[2:])},
		{"StreamPastEnd", "u", eventstore.ReadOptions{Until: 99}, stream},
		{"StreamBelowFrom", "u", eventstore.ReadOptions{From: eventstore.After(3), Until: 2}, nil},
		{"StreamWithLimit", "u", eventstore.ReadOptions{Until: 3, Limit: 2}, stream[:2]},
		{"AllForwards", eventstore.AllStreams, eventstore.ReadOptions{Until: all[3].Position}, all[:4]},
		{"AllBackwards", eventstore.AllStreams, eventstore.ReadOptions{Backwards: true, Until: all[1].Position}, reversed(all[1:])},
		{"AllFiltered", eventstore.AllStreams, eventstore.ReadOptions{Until: all[4].Position - 1, Filter: eventstore.Filter{StreamPrefix: "v"}}, nil},
	} {
		wantEvents(t, c.name, c.want, readAll(t, s, c.stream, c.opts))
	}
}

// testReadPartitions checks Filter.Partitions against eventstore.PartitionOf
// over many streams, forwards, backwards, with a limit, in small pages and
// combined with another condition: every share of a count's partitions
// reads exactly the events of its streams, in order.
func testReadPartitions(t *testing.T, s eventstore.Store) {
	const streams = 40
	for i := range 3 {
		for k := range streams {
			id := fmt.Sprintf("part-%d", k)
			typ := "even"
			if k%2 == 1 {
				typ = "odd"
			}
			mustAppend(t, s, id, eventstore.Exact(uint64(i)), ev(typ, fmt.Sprint(i)))
		}
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	for _, c := range []struct {
		count int
		of    []int
	}{
		{1, []int{0}}, {2, []int{1}}, {3, []int{0, 2}}, {12, []int{0, 3, 6, 9}}, {12, []int{1, 2, 4, 5, 7, 8, 10, 11}}, {7, []int{6}},
	} {
		p := eventstore.Partitions{Count: c.count, Of: c.of}
		var want []eventstore.Recorded
		for _, r := range all {
			if slices.Contains(c.of, eventstore.PartitionOf(r.StreamID, c.count)) {
				want = append(want, r)
			}
		}
		name := fmt.Sprintf("partitions %v of %d", c.of, c.count)
		f := eventstore.Filter{Partitions: p}
		wantEvents(t, name, want, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f}))
		wantEvents(t, name+" backwards", reversed(want), readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f, Backwards: true}))
		if len(want) > 3 {
			wantEvents(t, name+" limit 3", want[:3], readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f, Limit: 3}))
			wantEvents(t, name+" after the second", want[2:], readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f, From: eventstore.After(want[1].Position)}))
		}
		f.Types = []string{"odd"}
		var odd []eventstore.Recorded
		for _, r := range want {
			if r.Type == "odd" {
				odd = append(odd, r)
			}
		}
		wantEvents(t, name+" and type odd", odd, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: f}))
	}
}

func testReadMissing(t *testing.T, s eventstore.Store) {
	for _, backwards := range []bool{false, true} {
		opts := eventstore.ReadOptions{Backwards: backwards}
		if got := readAll(t, s, "missing", opts); len(got) != 0 {
			t.Errorf("Read(missing, backwards=%v) on an empty store: %d events", backwards, len(got))
		}
		if got := readAll(t, s, eventstore.AllStreams, opts); len(got) != 0 {
			t.Errorf("Read(AllStreams, backwards=%v) on an empty store: %d events", backwards, len(got))
		}
	}
	mustAppend(t, s, "present", eventstore.NoStream, ev("t", "1"))
	for _, id := range []string{"missing", "presen", "present2", "PRESENT"} {
		if got := readAll(t, s, id, eventstore.ReadOptions{}); len(got) != 0 {
			t.Errorf("Read(%q): %d events, want none", id, len(got))
		}
	}
}

// testReadBreak breaks out of reads early, more times than any sane
// connection pool is large, then appends and reads: a read that kept its
// rows or its connection after the break would make this hang (and fail at
// the deadline).
func testReadBreak(t *testing.T, s eventstore.Store) {
	evs := numbered(100, "t", "e")
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	for i := range 24 {
		opts := eventstore.ReadOptions{Backwards: i%2 == 1}
		stream := "s"
		if i%3 == 2 {
			stream = eventstore.AllStreams
		}
		n := 0
		for _, err := range s.Read(ctxTimeout(t), stream, opts) {
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			n++
			if n == 1+i%3 {
				break
			}
		}
		if n != 1+i%3 {
			t.Fatalf("read %d events before the break, want %d", n, 1+i%3)
		}
	}
	// A read abandoned in the middle, with an append in between.
	for r, err := range s.Read(ctxTimeout(t), "s", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if r.Version == 10 {
			mustAppend(t, s, "s", eventstore.Exact(100), ev("t", "while reading"))
			break
		}
	}
	mustAppend(t, s, "s", eventstore.Exact(101), ev("t", "after"))
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	want := recorded("s", 1, append(evs, ev("t", "while reading"), ev("t", "after"))...)
	wantEvents(t, "Read after breaks", want, got)
}

func testReadCancelled(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(5, "t", "e")...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, backwards := range []bool{false, true} {
			got, err := readErr(t, "Read", s.Read(ctx, stream, eventstore.ReadOptions{Backwards: backwards}))
			if len(got) != 0 {
				t.Errorf("Read(%q, backwards=%v) with a cancelled context yielded %d events", stream, backwards, len(got))
			}
			wantErr(t, fmt.Sprintf("Read(%q, backwards=%v) with a cancelled context", stream, backwards), err, context.Canceled)
		}
	}
	// Cancelling in the middle of a read ends it; an error, if any, is the
	// context's.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	n := 0
	for _, err := range s.Read(ctx, "s", eventstore.ReadOptions{}) {
		if err != nil {
			wantErr(t, "Read cancelled in the middle", err, context.Canceled)
			break
		}
		n++
		cancel()
	}
	if n == 0 {
		t.Errorf("Read cancelled after its first event yielded no event")
	}
	// The store still works.
	wantVersion(t, s, "s", 5)
}

func testStreamHandle(t *testing.T, s eventstore.Store) {
	h := eventstore.NewStream(s, "h")
	if h.ID() != "h" || h.Store() != s {
		t.Fatalf("NewStream: ID %q, store %v", h.ID(), h.Store())
	}
	ctx := ctxTimeout(t)
	if _, err := h.Append(ctx, eventstore.NoStream, ev("t", "1"), ev("t", "2")); err != nil {
		t.Fatalf("Stream.Append: %v", err)
	}
	if v, err := h.Version(ctx); err != nil || v != 2 {
		t.Errorf("Stream.Version: %d, %v; want 2", v, err)
	}
	got, err := eventstore.Collect(h.Read(ctx, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatalf("Stream.Read: %v", err)
	}
	wantEvents(t, "Stream.Read", recorded("h", 1, ev("t", "1"), ev("t", "2")), got)
	if err := h.SaveSnapshot(ctx, "", 2, "v1", []byte("state")); err != nil {
		t.Fatalf("Stream.SaveSnapshot: %v", err)
	}
	snap, err := h.LoadSnapshot(ctx, "")
	if err != nil || snap.Version != 2 || string(snap.Data) != "state" {
		t.Errorf("Stream.LoadSnapshot: %+v, %v", snap, err)
	}
}

// testReadMetadataKeys filters on metadata keys that a JSON path or an SQL
// string would take apart if they were spliced in unquoted.
func testReadMetadataKeys(t *testing.T, s eventstore.Store) {
	keys := []string{"a.b", `a"b`, "a'b", "$", "[0]", "a b", `a\b`, "ünï", "*", "a[0]"}
	var evs []eventstore.Event
	for i, k := range keys {
		evs = append(evs, eventstore.Event{Type: "t", Data: []byte(k), Metadata: map[string]string{k: fmt.Sprint("v", i), "other": "x"}})
	}
	// Decoys: what an unquoted path would find instead.
	evs = append(evs, eventstore.Event{Type: "t", Data: []byte("decoy"), Metadata: map[string]string{"a": "v0", "b": "v0"}})
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	all := recorded("s", 1, evs...)
	for i, k := range keys {
		v := fmt.Sprint("v", i)
		for _, f := range []eventstore.MetadataFilter{
			eventstore.MetadataEquals(k, v),
			eventstore.MetadataOneOf(k, v, "nope"),
			eventstore.MetadataHasPrefix(k, v),
		} {
			got := readAll(t, s, "s", eventstore.ReadOptions{Filter: eventstore.Filter{Metadata: []eventstore.MetadataFilter{f}}})
			wantEvents(t, fmt.Sprintf("Read with metadata %s %q %q", f.Op, k, v), all[i:i+1], got)
		}
	}
}

// testReadCheckpointing plays a consumer that polls the global log from
// just after the highest position it has seen, while writers append: it
// must end up with every event. (On a database where positions are taken
// before commit, a reader that can see a later position before an earlier
// one skips the earlier one for ever.)
func testReadCheckpointing(t *testing.T, s eventstore.Store) {
	const writers, appends = 4, 40
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	writing := make(chan struct{})
	var wg errgroup.Group
	for w := range writers {
		wg.Go(func() error {
			for i := range appends {
				if _, err := s.Append(ctx, fmt.Sprint("s", w), eventstore.Any, ev("t", fmt.Sprint(w, "/", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(writing)
		return wg.Wait()
	})
	var seen []eventstore.Recorded
	g.Go(func() error {
		var next uint64
		for done := false; !done; {
			select {
			case <-writing:
				done = true // one more read after the writers are done
			default:
			}
			got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(next)}))
			if err != nil {
				return err
			}
			if len(got) > 0 {
				seen = append(seen, got...)
				next = got[len(got)-1].Position
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != writers*appends {
		t.Errorf("store holds %d events, want %d", len(all), writers*appends)
	}
	wantSame(t, "checkpointing reader", all, seen)
}

// testReadNotIterated makes many reads and watches and never ranges over
// them: an adapter that took a connection (or a lock, or a goroutine) when
// Read or Watch is called, rather than when iteration begins, would leak it
// and the calls after would hang.
func testReadNotIterated(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "e")...)
	for range 50 {
		_ = s.Read(ctxTimeout(t), "s", eventstore.ReadOptions{})
		_ = s.Read(ctxTimeout(t), eventstore.AllStreams, eventstore.ReadOptions{Backwards: true})
		_ = s.Watch(ctxTimeout(t), "s", eventstore.WatchOptions{})
		_ = s.Watch(ctxTimeout(t), eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
	}
	mustAppend(t, s, "s", eventstore.Exact(3), ev("t", "after"))
	wantVersion(t, s, "s", 4)
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(3)})
	wantSame(t, "watch after unused iterators", readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(3)}), w.next(t, 1))
	w.stop(t)
}

// testReadPaging reads a stream longer than the pages adapters typically
// fetch per query (a thousand rows or so), with limits and filters that end
// inside a later page, in both directions, to catch paging that loses or
// repeats an event at a page boundary.
func testReadPaging(t *testing.T, s eventstore.Store) {
	const n = 2100
	evs := make([]eventstore.Event, n)
	for i := range evs {
		typ := "other"
		if i%3 == 0 {
			typ = "third"
		}
		evs[i] = eventstore.Event{Type: typ, Data: []byte(fmt.Sprint(i + 1))}
	}
	for lo := 0; lo < n; lo += 700 {
		mustAppend(t, s, "s", eventstore.Any, evs[lo:lo+700]...)
	}
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "elsewhere"))
	all := recorded("s", 1, evs...)
	thirds := make([]eventstore.Recorded, 0, n/3)
	for _, r := range all {
		if r.Type == "third" {
			thirds = append(thirds, r)
		}
	}
	byType := eventstore.Filter{Types: []string{"third"}}
	for _, c := range []struct {
		name string
		opts eventstore.ReadOptions
		want []eventstore.Recorded
	}{
		{"All", eventstore.ReadOptions{}, all},
		{"Backwards", eventstore.ReadOptions{Backwards: true}, reversed(all)},
		{"FromLimit", eventstore.ReadOptions{From: eventstore.After(499), Limit: 1500}, all[499:1999]},
		{"BackwardsFromLimit", eventstore.ReadOptions{From: eventstore.After(2051), Limit: 1500, Backwards: true}, reversed(all[550:2050])},
		{"Filtered", eventstore.ReadOptions{Filter: byType}, thirds},
		{"FilteredLimit", eventstore.ReadOptions{Filter: byType, Limit: 650}, thirds[:650]},
		{"FilteredBackwardsLimit", eventstore.ReadOptions{Filter: byType, Limit: 650, Backwards: true}, reversed(thirds)[:650]},
	} {
		got := readAll(t, s, "s", c.opts)
		if len(got) != len(c.want) {
			t.Errorf("%s: read %d events, want %d", c.name, len(got), len(c.want))
			continue
		}
		// Compare the cheap way (see testAppendLargeBatch).
		for i := range got {
			if got[i].Version != c.want[i].Version || !bytes.Equal(got[i].Data, c.want[i].Data) || got[i].Type != c.want[i].Type {
				t.Errorf("%s: event %d is %s@%d %q, want version %d", c.name, i, got[i].StreamID, got[i].Version, got[i].Data, c.want[i].Version)
				break
			}
		}
	}
	// The same over the global log.
	gotAll := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(99), Limit: 1})[0].Position - 1), Limit: 1800})
	if len(gotAll) != 1800 || gotAll[0].Version != 100 || gotAll[1799].Version != 1899 {
		t.Errorf("Read(AllStreams) from version 100's position, limit 1800: %d events", len(gotAll))
	}
	checkPositions(t, gotAll, false)
}

// testReadFromPastEnd reads from bounds past every version and position a
// store can hold. From is a bound, not an event that must exist: forwards
// nothing, backwards everything, with or without a filter. (Issue 9 item 9:
// SQLite refused From > MaxInt64 as invalid input while PostgreSQL read;
// an int64 conversion would wrap it to a negative bound.)
func testReadFromPastEnd(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "s")...)
	mustAppend(t, s, "x", eventstore.NoStream, ev("keep", "x"))
	mustAppend(t, s, "s", eventstore.Exact(3), ev("keep", "s-keep"))
	keep := eventstore.Filter{Types: []string{"keep"}}
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, from := range []uint64{math.MaxInt64 - 1, math.MaxInt64, math.MaxUint64} {
			for _, f := range []eventstore.Filter{{}, keep} {
				opts := eventstore.ReadOptions{From: eventstore.After(from), Filter: f}
				what := fmt.Sprintf("Read(%q, %+v)", stream, opts)
				got, err := readErr(t, what, s.Read(ctxTimeout(t), stream, opts))
				if err != nil || len(got) != 0 {
					t.Errorf("%s: %d events, error %v; want none and no error", what, len(got), err)
				}
				want := readAll(t, s, stream, eventstore.ReadOptions{Backwards: true, Filter: f})
				for _, limit := range []int{0, 1} {
					opts := eventstore.ReadOptions{From: eventstore.After(from), Backwards: true, Limit: limit, Filter: f}
					what := fmt.Sprintf("Read(%q, %+v)", stream, opts)
					got, err := readErr(t, what, s.Read(ctxTimeout(t), stream, opts))
					if err != nil {
						t.Errorf("%s: %v; want every event from the end", what, err)
						continue
					}
					if limit > 0 {
						want = want[:limit]
					}
					wantSame(t, what, want, got)
				}
			}
		}
	}
}

// testReadOmit reads with every set of ReadOptions.Omit, over pages of
// every size (a store may select other columns when it omits some) and
// with a filter: the fields that are always filled must be those of a full
// read, and an omitted field either zero or the full read's (Omit is a
// hint). A store that shifts columns when it leaves some out fails here.
func testReadOmit(t *testing.T, s eventstore.Store) {
	const n = 1500
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.Event{Type: fmt.Sprint("t", i%3), Data: []byte(fmt.Sprint("data-", i))}
		if i%2 == 0 {
			evs[i].ID = fmt.Sprint("omit-id-", i)
		}
		if i%5 != 0 {
			evs[i].Metadata = map[string]string{"k": fmt.Sprint("v", i)}
		}
	}
	for lo := 0; lo < n; lo += 500 {
		mustAppend(t, s, "s", eventstore.Any, evs[lo:lo+500]...)
		mustAppend(t, s, "other", eventstore.Any, ev("t0", fmt.Sprint("other-", lo)))
	}
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, opts := range []eventstore.ReadOptions{
			{},
			{Backwards: true},
			{From: eventstore.After(100), Limit: 1200},
			{Filter: eventstore.Filter{Types: []string{"t1"}}},
		} {
			full := readAll(t, s, stream, opts)
			for omit := eventstore.Fields(1); omit <= eventstore.AllFields; omit++ {
				o := opts
				o.Omit = omit
				got := readAll(t, s, stream, o)
				what := fmt.Sprintf("Read(%q, %+v)", stream, o)
				if len(got) != len(full) {
					t.Errorf("%s: %d events, want %d", what, len(got), len(full))
					continue
				}
				for i, g := range got {
					if msg := omitted(g, full[i], omit); msg != "" {
						t.Errorf("%s: event %d (%s@%d): %s", what, i, full[i].StreamID, full[i].Version, msg)
						break
					}
				}
			}
		}
	}
}

// testReadOmitLargeMetadata reads events whose metadata is much of their
// size with every set of ReadOptions.Omit: a page ends at
// eventstore.PageBytes of what it keeps, so a store that counted omitted
// metadata there would end pages early, and the front, which sums the
// events it got, would take such a short page for the end of the read.
func testReadOmitLargeMetadata(t *testing.T, s eventstore.Store) {
	const n = 12
	for i := range n {
		mustAppend(t, s, "s", eventstore.Exact(uint64(i)), eventstore.Event{
			Type:     "t",
			Data:     bytes.Repeat([]byte{byte(i)}, 600<<10),
			Metadata: map[string]string{"m": strings.Repeat("x", 400<<10)},
		})
		mustAppend(t, s, "other", eventstore.Exact(uint64(i)), ev("t", fmt.Sprint(i)))
	}
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, opts := range []eventstore.ReadOptions{{}, {Backwards: true}, {Filter: eventstore.Filter{Types: []string{"t"}}}} {
			for omit := eventstore.Fields(0); omit <= eventstore.AllFields; omit++ {
				o := opts
				o.Omit = omit
				got := 0
				for r, err := range s.Read(t.Context(), stream, o) {
					if err != nil {
						t.Fatalf("Read(%q, %+v): %v", stream, o, err)
					}
					if r.StreamID == "s" {
						got++
					}
				}
				if got != n {
					t.Errorf("Read(%q, %+v): %d events of s, want %d", stream, o, got, n)
				}
			}
		}
	}
}

// omitted says how got, read with omit, differs from want, read in full,
// beyond what omit allows; "" when it does not.
func omitted(got, want eventstore.Recorded, omit eventstore.Fields) string {
	switch {
	case got.StreamID != want.StreamID || got.Version != want.Version || got.Position != want.Position:
		return fmt.Sprintf("key %s@%d position %d, want %s@%d position %d", got.StreamID, got.Version, got.Position, want.StreamID, want.Version, want.Position)
	case got.Type != want.Type || !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("type %q data %q, want %q %q", got.Type, got.Data, want.Type, want.Data)
	case got.ID != want.ID && (omit&eventstore.FieldID == 0 || got.ID != ""):
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case !maps.Equal(got.Metadata, want.Metadata) && (omit&eventstore.FieldMetadata == 0 || got.Metadata != nil):
		return fmt.Sprintf("metadata %v, want %v", got.Metadata, want.Metadata)
	case !got.Time.Equal(want.Time) && (omit&eventstore.FieldTime == 0 || !got.Time.IsZero()):
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	}
	return ""
}
