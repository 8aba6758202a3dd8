package esotel_test

import (
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
)

// TestObserveCommits: the group commit metrics follow the store's Stats.
func TestObserveCommits(t *testing.T) {
	tel := newTelemetry(t)
	store, err := sqlite.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, err := esotel.ObserveCommits(func() (uint64, uint64) {
		s := store.Stats()
		return s.Appends, s.Commits
	}, append(tel.opts(), esotel.WithAdapter("sqlite"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := reg.Unregister(); err != nil {
			t.Error(err)
		}
	}()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := store.Append(t.Context(), "s", eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
				t.Error(i, err)
			}
		})
	}
	wg.Wait()
	st := store.Stats()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				got[m.Name] = float64(d.DataPoints[0].Value)
			case metricdata.Gauge[float64]:
				got[m.Name] = d.DataPoints[0].Value
			}
		}
	}
	want := map[string]float64{
		"esv2.commits":           float64(st.Commits),
		"esv2.commit.appends":    20,
		"esv2.commit.group_size": 20 / float64(st.Commits),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
}
