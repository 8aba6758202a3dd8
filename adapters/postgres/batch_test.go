package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// TestAppendBatchGroup runs one append_batch call carrying several appends
// that depend on each other, as the writer builds them under load: each is
// checked against the state the previous ones leave, and a refused one
// does not affect the others.
func TestAppendBatchGroup(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.Append(ctx, "other", eventstore.NoStream, eventstore.Event{ID: "taken", Type: "t"}); err != nil {
		t.Fatal(err)
	}
	e := func(id string) eventstore.Event { return eventstore.Event{ID: id, Type: "t"} }
	group := []*appendReq{
		{stream: "s", expected: eventstore.NoStream, events: []eventstore.Event{e("a"), e("b")}}, // ok: s@1..2
		{stream: "s", expected: eventstore.Exact(2), events: []eventstore.Event{e("c")}},         // ok: sees the first
		{stream: "s", expected: eventstore.Exact(2), events: []eventstore.Event{e("d")}},         // conflict: s is at 3
		{stream: "t", expected: eventstore.StreamExists, events: []eventstore.Event{e("e")}},     // conflict: t is empty
		{stream: "t", expected: eventstore.Any, events: []eventstore.Event{e("f"), e("taken")}},  // ID in another stream
		{stream: "s", expected: eventstore.Exact(3), events: nil},                                // empty: ok at 3
		{stream: "t", expected: eventstore.NoStream, events: []eventstore.Event{e("g")}},         // ok: t@1, f not written
		{stream: "other", expected: eventstore.Exact(0), events: []eventstore.Event{e("taken")}}, // stored retry: ok
	}
	rows, err := s.d.callAppend(ctx, s.d.pool, group)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		Res eventstore.AppendResult
		Err string
	}
	got := make([]outcome, len(rows))
	for i := range rows {
		r := rows[i].result(group[i])
		got[i] = outcome{Res: r.res}
		var ce *eventstore.ConflictError
		var ie *eventstore.IdempotencyError
		switch {
		case errors.As(r.err, &ce):
			got[i].Err = "conflict at " + eventstore.Exact(ce.Actual).String()
		case errors.As(r.err, &ie):
			got[i].Err = "id " + ie.EventID + " in " + ie.StoredIn
		case r.err != nil:
			got[i].Err = r.err.Error()
		}
	}
	want := []outcome{
		{Res: eventstore.AppendResult{Version: 2, Position: 3, Appended: 2}},
		{Res: eventstore.AppendResult{Version: 3, Position: 4, Appended: 1}},
		{Err: "conflict at 3"},
		{Err: "conflict at no stream"},
		{Err: "id taken in other"},
		{Res: eventstore.AppendResult{Version: 3}},
		{Res: eventstore.AppendResult{Version: 1, Position: 5, Appended: 1}},
		{Res: eventstore.AppendResult{Version: 1, Duplicates: []eventstore.Duplicate{{Index: 0, ID: "taken", Version: 1}}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range all {
		ids = append(ids, r.StreamID+"@"+eventstore.Exact(r.Version).String()+":"+r.ID)
	}
	if diff := cmp.Diff([]string{"other@1:taken", "s@1:a", "s@2:b", "s@3:c", "t@1:g"}, ids); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

// TestTakeSplitsSharedIDs: the writer never puts two appends carrying the
// same event ID in one group, and caps a group's size.
func TestTakeSplitsSharedIDs(t *testing.T) {
	w := newWriter(&pgDriver{cfg: config{groupEvents: 4}})
	e := func(id string) eventstore.Event { return eventstore.Event{ID: id, Type: "t"} }
	reqs := []*appendReq{
		{stream: "a", events: []eventstore.Event{e("1"), e("2")}},
		{stream: "b", events: []eventstore.Event{e("3")}},
		{stream: "c", events: []eventstore.Event{e("2")}}, // shares "2": next group
		{stream: "d", events: []eventstore.Event{{Type: "t"}, {Type: "t"}, {Type: "t"}}},
		{stream: "e", events: make([]eventstore.Event, 9)}, // larger than the cap: alone
		{stream: "f"},
	}
	got := groupsTaken(t, w, reqs)
	if diff := cmp.Diff([][]string{{"a", "b"}, {"c", "d"}, {"e"}, {"f"}}, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

// TestLargePartialRetry: a large batch half made of events already stored
// appends only the new half, reports the rest as duplicates, and does so
// in time linear in the batch (the skipped events are looked up by index,
// not searched).
func TestLargePartialRetry(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	const n = 10_000
	batch := make([]eventstore.Event, 2*n)
	for i := range batch {
		batch[i] = eventstore.Event{ID: fmt.Sprintf("e%d", i), Type: "t"}
	}
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, batch[:n]...); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := s.Append(t.Context(), "s", eventstore.Exact(n), batch...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-event append with %d duplicates: %v", 2*n, n, time.Since(start))
	if res.Version != 2*n || res.Appended != n || len(res.Duplicates) != n {
		t.Fatalf("result: version %d, appended %d, %d duplicates; want %d, %d, %d", res.Version, res.Appended, len(res.Duplicates), 2*n, n, n)
	}
	if d := res.Duplicates[n-1]; d != (eventstore.Duplicate{Index: n - 1, ID: fmt.Sprintf("e%d", n-1), Version: n}) {
		t.Errorf("last duplicate %+v", d)
	}
	got, err := eventstore.Collect(s.Read(t.Context(), "s", eventstore.ReadOptions{From: eventstore.After(n), Limit: 1}))
	if err != nil || len(got) != 1 || got[0].ID != fmt.Sprintf("e%d", n) {
		t.Errorf("event %d: %+v, %v; want ID e%d", n+1, got, err, n)
	}
}

// groupsTaken submits reqs to w and returns the streams of each group the
// writer takes, in order, until the queue is empty.
func groupsTaken(t *testing.T, w *writer, reqs []*appendReq) [][]string {
	t.Helper()
	for _, r := range reqs {
		r.ctx = t.Context()
		r.done = make(chan appendResp, 1)
		if err := w.submit(r); err != nil {
			t.Fatal(err)
		}
	}
	var got [][]string
	for {
		g := w.take()
		if g == nil {
			break
		}
		var names []string
		for _, r := range g {
			names = append(names, r.stream)
		}
		got = append(got, names)
	}
	return got
}
