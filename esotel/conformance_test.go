package esotel_test

import (
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"
)

// TestConformance: a wrapped store is a store: it passes the conformance
// suite, measuring with a real SDK. Tracing is the global provider's,
// which does nothing here: with a real one, each event would carry a
// trace context in its metadata, which the suite's exact comparisons of
// stored metadata do not expect (TestTracesAndMetrics checks it).
func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		tel := newTelemetry(t)
		s, err := sqlite.Open(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		w := esotel.WrapStore(s, esotel.WithMeterProvider(tel.mp))
		t.Cleanup(func() { _ = w.Close() })
		return w
	})
}
