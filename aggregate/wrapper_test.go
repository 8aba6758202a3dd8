package aggregate_test

import (
	"context"
	"iter"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// countingStore is a store wrapper of the kind a user writes (metrics,
// tracing, tests): it embeds the store and records the calls it sees.
type countingStore struct {
	eventstore.Store
	mu    sync.Mutex
	calls []string
}

func (c *countingStore) record(call string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

func (c *countingStore) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.Join(c.calls, " ")
	c.calls = nil
	return s
}

func (c *countingStore) Append(ctx context.Context, id string, exp eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	res, err := c.Store.Append(ctx, id, exp, events...)
	switch {
	case err != nil:
		c.record("append:refused")
	case res.Appended == 0:
		c.record("append:duplicate")
	default:
		c.record("append")
	}
	return res, err
}

func (c *countingStore) Read(ctx context.Context, id string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	c.record("read")
	return c.Store.Read(ctx, id, opts)
}

func (c *countingStore) FindEvent(ctx context.Context, id string) (eventstore.Recorded, error) {
	c.record("find")
	return c.Store.FindEvent(ctx, id)
}

func (c *countingStore) Info(ctx context.Context, id string) (eventstore.StreamInfo, error) {
	c.record("info")
	return c.Store.Info(ctx, id)
}

// TestWrapperSeesTheTruth: a store wrapper sees exactly the operations the
// repository needs, and no probe: the command-ID look-up is a FindEvent,
// never an append that is expected to fail, and a repeat's position comes
// from the store's answer without calls of its own (issue 14).
func TestWrapperSeesTheTruth(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		w := &countingStore{Store: store}
		repo := newRepo(t, w, aggregate.Config[Counter, CounterEvent]{})
		one := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
		two := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil }
		for _, c := range []struct {
			name string
			run  func() error
			want string
		}{
			// A load that reads no event asks nothing more: a truncation
			// keeps the last event, so only a new or deleted stream reads
			// empty, and a deleted one refuses the append (issue 12).
			{"update", func() error { _, err := repo.Update(ctx, "c", one); return err }, "read append"},
			{"one-event command", func() error { _, err := repo.Update(ctx, "c", one, aggregate.WithCommandID("a")); return err }, "read append"},
			{"its repeat", func() error { _, err := repo.Update(ctx, "c", one, aggregate.WithCommandID("a")); return err }, "read append:duplicate read"},
			{"two-event command", func() error { _, err := repo.Update(ctx, "c", two, aggregate.WithCommandID("b")); return err }, "read find append"},
			{"its repeat", func() error { _, err := repo.Update(ctx, "c", two, aggregate.WithCommandID("b")); return err }, "read find read"},
			{"load existing", func() error { _, err := repo.LoadExisting(ctx, "c"); return err }, "read"},
		} {
			if err := c.run(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if diff := cmp.Diff(c.want, w.take()); diff != "" {
				t.Errorf("%s: calls (-want +got):\n%s", c.name, diff)
			}
		}
	})
}
