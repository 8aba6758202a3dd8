package esotel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ObserveCommits reports a store's group commit as metrics, from stats: the
// number of appends that stored events and of the transactions that
// committed them, as the adapters' Stats methods count them:
//
//	reg, err := esotel.ObserveCommits(func() (appends, commits uint64) {
//		s := store.Stats()
//		return s.Appends, s.Commits
//	})
//	defer reg.Unregister()
//
// Metrics, by esv2.adapter (set it with [WithAdapter]): esv2.commits and
// esv2.commit.appends (counters), and esv2.commit.group_size (gauge), the
// mean number of appends per transaction since the previous collection (0
// when nothing was committed meanwhile). stats is called at each
// collection, from the SDK's goroutine.
func ObserveCommits(stats func() (appends, commits uint64), opts ...Option) (metric.Registration, error) {
	cfg := newConfig(opts)
	m := cfg.meter()
	commits, err := m.Int64ObservableCounter("esv2.commits", metric.WithUnit("{transaction}"),
		metric.WithDescription("Write transactions committed by the store."))
	if err != nil {
		return nil, err
	}
	appends, err := m.Int64ObservableCounter("esv2.commit.appends", metric.WithUnit("{append}"),
		metric.WithDescription("Appends that stored events, committed by those transactions."))
	if err != nil {
		return nil, err
	}
	size, err := m.Float64ObservableGauge("esv2.commit.group_size", metric.WithUnit("{append}"),
		metric.WithDescription("Mean appends per committed transaction since the previous collection."))
	if err != nil {
		return nil, err
	}
	var attrs []attribute.KeyValue
	if cfg.adapter != "" {
		attrs = append(attrs, AttrAdapter.String(cfg.adapter))
	}
	set := metric.WithAttributes(attrs...)
	var mu sync.Mutex
	var lastA, lastC uint64
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		a, c := stats()
		o.ObserveInt64(commits, int64(c), set)
		o.ObserveInt64(appends, int64(a), set)
		mu.Lock()
		mean := 0.0
		if c > lastC {
			mean = float64(a-lastA) / float64(c-lastC)
		}
		lastA, lastC = a, c
		mu.Unlock()
		o.ObserveFloat64(size, mean, set)
		return nil
	}, commits, appends, size)
}
