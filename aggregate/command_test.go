package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// readCounter wraps a store and records every Read: where it starts and how
// many events it yields.
type readCounter struct {
	eventstore.Store
	mu    sync.Mutex
	reads []readCall
}

type readCall struct {
	From    uint64 // the first version the read can return
	Events  int
	Filters int // metadata filters
}

func (c *readCounter) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) {
		after, _ := opts.From.Cursor()
		call := readCall{From: after + 1, Filters: len(opts.Filter.Metadata)}
		defer func() {
			c.mu.Lock()
			c.reads = append(c.reads, call)
			c.mu.Unlock()
		}()
		for rec, err := range c.Store.Read(ctx, streamID, opts) {
			if err == nil {
				call.Events++
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// take returns the reads since the last take.
func (c *readCounter) take() []readCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = nil
	return r
}

// takeAll empties the counter, and fails once it is empty: a command that
// cannot be decided twice.
func takeAll(s Counter) ([]CounterEvent, error) {
	if s.N == 0 {
		return nil, fmt.Errorf("take all: %w", errNegative)
	}
	return []CounterEvent{Added{By: -s.N}}, nil
}

// TestCommandRetryDoesNotReadStream: a command ID costs no read of a long
// stream, neither for a new command nor for a retry (whether deciding
// again succeeds or fails): every read starts at the snapshot.
func TestCommandRetryDoesNotReadStream(t *testing.T) {
	const long, every = 2000, 100
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		rc := &readCounter{Store: store}
		repo := newRepo(t, rc, aggregate.Config[Counter, CounterEvent]{
			Evolve: countOnly, SnapshotEvery: every, SnapshotSchema: "counter.v1",
		})
		a, err := repo.Load(ctx, "long")
		if err != nil {
			t.Fatal(err)
		}
		for range long {
			a.Record(Added{By: 1})
		}
		if err := repo.Save(ctx, a); err != nil { // snapshots at 2000
			t.Fatal(err)
		}
		add := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
		steps := []struct {
			name   string
			decide func(Counter) ([]CounterEvent, error)
			cmd    string
			want   uint64 // version after
		}{
			{"new command", add, "add-1", long + 1},
			{"retry, decides again", add, "add-1", long + 1},
			{"new command, then it cannot be decided again", takeAll, "take-1", long + 2},
			{"retry, decide fails", takeAll, "take-1", long + 2},
		}
		rc.take()
		for _, st := range steps {
			got, err := repo.Update(ctx, "long", st.decide, aggregate.WithCommandID(st.cmd))
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got.Version() != st.want {
				t.Errorf("%s: version %d, want %d", st.name, got.Version(), st.want)
			}
			reads := rc.take()
			if len(reads) == 0 {
				t.Errorf("%s: no read at all: the wrapper is not in use", st.name)
			}
			// A Load reads from the snapshot's own event, to see that
			// the stream reaches it (issue 9 item 7): one event more.
			for _, r := range reads {
				if r.From < long || r.Events > 3 || r.Filters > 0 {
					t.Errorf("%s: read %+v: want every read to start at the snapshot at %d and yield at most 3 events, unfiltered",
						st.name, r, long)
				}
			}
		}
		info, err := store.Info(ctx, "long")
		if err != nil {
			t.Fatal(err)
		}
		if info.Version != long+2 {
			t.Errorf("stream version %d, want %d", info.Version, long+2)
		}
	})
}

// TestCommandRetryDecidesOtherEvents: a repeat that decides another number
// of events than the first time stores nothing, through Update and Save,
// and the aggregate returned is the stream's.
func TestCommandRetryDecidesOtherEvents(t *testing.T) {
	adds := func(bys ...int64) func(Counter) ([]CounterEvent, error) {
		return func(Counter) ([]CounterEvent, error) {
			var out []CounterEvent
			for _, by := range bys {
				out = append(out, Added{By: by})
			}
			return out, nil
		}
	}
	for _, c := range []struct {
		name          string
		first, repeat []int64
	}{
		{"one then two", []int64{1}, []int64{10, 20}},
		{"two then three", []int64{1, 2}, []int64{10, 20, 30}},
		{"three then one", []int64{1, 2, 3}, []int64{10}},
		{"two then two others", []int64{1, 2}, []int64{10, 20}},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, store eventstore.Store) {
				ctx := t.Context()
				repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
				cmd := aggregate.WithCommandID("cmd")
				first, err := repo.Update(ctx, "s", adds(c.first...), cmd)
				if err != nil {
					t.Fatal(err)
				}
				n := uint64(len(c.first))
				want := Counter{Log: c.first}
				for _, by := range c.first {
					want.N += by
				}
				if diff := cmp.Diff(want, first.State()); diff != "" || first.Version() != n {
					t.Errorf("first: version %d (want %d), state mismatch (-want +got):\n%s", first.Version(), n, diff)
				}
				again, err := repo.Update(ctx, "s", adds(c.repeat...), cmd)
				if err != nil {
					t.Fatalf("Update repeat: %v", err)
				}
				if diff := cmp.Diff(want, again.State()); diff != "" || again.Version() != n {
					t.Errorf("Update repeat: version %d (want %d), state mismatch (-want +got):\n%s", again.Version(), n, diff)
				}
				a, err := repo.Load(ctx, "s")
				if err != nil {
					t.Fatal(err)
				}
				for _, by := range c.repeat {
					a.Record(Added{By: by})
				}
				if err := repo.Save(ctx, a, cmd); err != nil {
					t.Fatalf("Save repeat: %v", err)
				}
				if diff := cmp.Diff(want, a.State()); diff != "" || a.Version() != n {
					t.Errorf("Save repeat: version %d (want %d), state mismatch (-want +got):\n%s", a.Version(), n, diff)
				}
				recs, err := eventstore.Collect(store.Read(ctx, "s", eventstore.ReadOptions{}))
				if err != nil {
					t.Fatal(err)
				}
				if uint64(len(recs)) != n {
					t.Errorf("stream holds %d events, want %d: %+v", len(recs), n, recs)
				}
			})
		})
	}
}

// TestCommandLookUpWritesNothing: looking a command up (a new command of
// several events, a decide that fails) stores nothing but the command's
// events, and a failing decide of a command never applied fails.
func TestCommandLookUpWritesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
		if _, err := repo.Update(ctx, "empty", decrement, aggregate.WithCommandID("never")); !errors.Is(err, errNegative) {
			t.Errorf("Update of a new command whose decide fails: err = %v, want errNegative", err)
		}
		two := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil }
		a, err := repo.Update(ctx, "two", two, aggregate.WithCommandID("both"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Version() != 2 || a.State().N != 3 {
			t.Errorf("new two-event command: version %d, count %d, want 2 and 3", a.Version(), a.State().N)
		}
		for stream, want := range map[string]int{"empty": 0, "two": 2} {
			recs, err := eventstore.Collect(store.Read(ctx, stream, eventstore.ReadOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, r := range recs {
				types = append(types, r.Type)
			}
			if len(recs) != want {
				t.Errorf("stream %q holds %v, want %d counter.added events", stream, types, want)
			}
		}
	})
}

// appendCounter wraps a store and counts the Append calls and the conflicts
// they met: what a metrics wrapper sees.
type appendCounter struct {
	eventstore.Store
	mu                 sync.Mutex
	appends, conflicts int
}

func (c *appendCounter) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	res, err := c.Store.Append(ctx, streamID, expected, events...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.appends++
	if errors.Is(err, eventstore.ErrConcurrency) {
		c.conflicts++
	}
	return res, err
}

// TestCommandLookUpIsNoAppend (issue 10): looking a command up is a look-up
// of its first event ID, not an append the store must refuse: a wrapper
// counting appends sees only the command's own, and no conflict.
func TestCommandLookUpIsNoAppend(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		c := &appendCounter{Store: store}
		repo := newRepo(t, c, aggregate.Config[Counter, CounterEvent]{})
		two := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil }
		// A new command of two events is looked up before it is appended;
		// its repeat is looked up, found, and appends nothing.
		for range 2 {
			if _, err := repo.Update(ctx, "c", two, aggregate.WithCommandID("cmd")); err != nil {
				t.Fatal(err)
			}
		}
		// A failing decide of a command never applied is looked up too.
		if _, err := repo.Update(ctx, "empty", decrement, aggregate.WithCommandID("never")); !errors.Is(err, errNegative) {
			t.Fatalf("Update whose decide fails: err = %v, want errNegative", err)
		}
		if c.appends != 1 || c.conflicts != 0 {
			t.Errorf("a wrapper saw %d appends (%d conflicts), want 1 (0): the command's own append only", c.appends, c.conflicts)
		}
	})
}
