package testsuite

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// Large events: stores end pages at eventstore.PageBytes as well as at
// their row limits (issue 9 item 3). Pages cut short by bytes must join up
// like any others: nothing skipped or repeated, in every direction, with
// limits and filters, and a watch must read on after such a page instead
// of waiting for the next append.
func largeEventTests() []test {
	return []test{
		{"Read", leaf(testLargeRead)},
		{"Watch", leaf(testLargeWatch)},
		{"FilteredWatch", leaf(testLargeFilteredWatch)},
	}
}

// largeEvents appends, to stream "big", four events of exactly
// DefaultMaxEventSize bytes of data (a page of exactly PageBytes), then
// eight of 900 KiB with metadata, types alternating "even" and "odd", with
// a small event on stream "small" after each; it returns what reading
// "big" gives back.
func largeEvents(t *testing.T, s eventstore.Store) []eventstore.Recorded {
	t.Helper()
	var evs []eventstore.Event
	for i := range 12 {
		size, md := eventstore.DefaultMaxEventSize, map[string]string(nil)
		if i >= 4 {
			size, md = 900<<10, map[string]string{"n": fmt.Sprint(i + 1), "pad": "xxxxxxxxxxxxxxxx"}
		}
		data := bytes.Repeat([]byte{byte(i + 1)}, size)
		typ := "odd"
		if (i+1)%2 == 0 {
			typ = "even"
		}
		e := eventstore.Event{Type: typ, Data: data, Metadata: md}
		evs = append(evs, e)
		mustAppend(t, s, "big", eventstore.Exact(uint64(i)), e)
		mustAppend(t, s, "small", eventstore.Exact(uint64(i)), ev("t", fmt.Sprint(i+1)))
	}
	return recorded("big", 1, evs...)
}

// sameLarge compares events by stream, version, type and data, cheaply.
func sameLarge(t *testing.T, what string, got, want []eventstore.Recorded) {
	t.Helper()
	if len(got) != len(want) {
		var vs []uint64
		for _, r := range got {
			vs = append(vs, r.Version)
		}
		t.Errorf("%s: %d events (versions %v), want %d", what, len(got), vs, len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.StreamID != w.StreamID || g.Version != w.Version || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) || !maps.Equal(g.Metadata, w.Metadata) {
			t.Errorf("%s: event %d is %s@%d (%s, %d bytes), want %s@%d (%s, %d bytes)", what, i,
				g.StreamID, g.Version, g.Type, len(g.Data), w.StreamID, w.Version, w.Type, len(w.Data))
			return
		}
	}
}

func ofType(events []eventstore.Recorded, typ string) []eventstore.Recorded {
	var out []eventstore.Recorded
	for _, r := range events {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func testLargeRead(t *testing.T, s eventstore.Store) {
	all := largeEvents(t, s)
	odd := eventstore.Filter{Types: []string{"odd"}}
	for _, c := range []struct {
		name   string
		stream string
		opts   eventstore.ReadOptions
		want   []eventstore.Recorded
	}{
		{"Forwards", "big", eventstore.ReadOptions{}, all},
		{"Backwards", "big", eventstore.ReadOptions{Backwards: true}, reversed(all)},
		{"FromLimit", "big", eventstore.ReadOptions{From: eventstore.After(2), Limit: 7}, all[2:9]},
		{"BackwardsFromLimit", "big", eventstore.ReadOptions{From: eventstore.After(12), Limit: 8, Backwards: true}, reversed(all[2:11])[:8]},
		{"Filtered", "big", eventstore.ReadOptions{Filter: odd}, ofType(all, "odd")},
		{"AllStreamsByPrefix", eventstore.AllStreams, eventstore.ReadOptions{Filter: eventstore.Filter{StreamPrefix: "bi"}}, all},
		{"AllStreamsBackwardsByType", eventstore.AllStreams, eventstore.ReadOptions{Backwards: true, Filter: eventstore.Filter{Types: []string{"even"}}}, reversed(ofType(all, "even"))},
	} {
		sameLarge(t, c.name, readAll(t, s, c.stream, c.opts), c.want)
	}
}

func testLargeWatch(t *testing.T, s eventstore.Store) {
	all := largeEvents(t, s)
	w := startWatch(t, s, "big", eventstore.WatchOptions{From: eventstore.FromStart()})
	// All twelve without another append: pages cut short by bytes are
	// not the end.
	sameLarge(t, "catch-up", w.next(t, len(all)), all)
	mustAppend(t, s, "big", eventstore.Exact(12), ev("odd", "live"))
	if got := w.next(t, 1)[0]; got.Version != 13 || string(got.Data) != "live" {
		t.Errorf("live event: got %s@%d %q, want big@13 %q", got.StreamID, got.Version, got.Data, "live")
	}
}

func testLargeFilteredWatch(t *testing.T, s eventstore.Store) {
	all := largeEvents(t, s)
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: eventstore.Filter{Types: []string{"odd"}}})
	odd := ofType(all, "odd")
	sameLarge(t, "catch-up", w.next(t, len(odd)), odd)
	mustAppend(t, s, "big", eventstore.Exact(12), ev("odd", "live"))
	if got := w.next(t, 1)[0]; got.Version != 13 || string(got.Data) != "live" {
		t.Errorf("live event: got %s@%d %q, want big@13 %q", got.StreamID, got.Version, got.Data, "live")
	}
}
