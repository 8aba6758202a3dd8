package esotel_test

import (
	"errors"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
)

// TestLifecycleThroughWrapper: deletion, truncation and snapshot deletion
// reach the wrapped store (the Stream handle finds the ability on the
// wrapper) in spans of their own; a conflict is marked on its span.
func TestLifecycleThroughWrapper(t *testing.T) {
	tel := newTelemetry(t)
	inner, err := sqlite.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	s := esotel.WrapStore(inner, tel.opts()...)
	ctx := t.Context()
	h := eventstore.NewStream(s, "a")
	if _, err := h.Append(ctx, eventstore.NoStream, eventstore.Event{Type: "T"}, eventstore.Event{Type: "T"}, eventstore.Event{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := h.SaveSnapshot(ctx, "", 3, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSnapshots(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(ctx, eventstore.Exact(2)); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("Delete with a stale version: %v, want a conflict", err)
	}
	if err := h.Delete(ctx, eventstore.Exact(3)); err != nil {
		t.Fatal(err)
	}
	if info, err := inner.Info(ctx, "a"); err != nil || !info.Deleted {
		t.Errorf("Info of the wrapped store: %+v, %v; want it deleted", info, err)
	}
	for name, n := range map[string]int{"esv2.stream.delete": 2, "esv2.stream.truncate": 1, "esv2.snapshot.delete": 1} {
		if got := len(tel.named(name)); got != n {
			t.Errorf("%d %s spans, want %d", got, name, n)
		}
	}
	var conflicts int
	for _, sp := range tel.named("esv2.stream.delete") {
		if v, ok := attr(sp, esotel.AttrConflict); ok && v.AsBool() {
			conflicts++
		}
	}
	if conflicts != 1 {
		t.Errorf("%d delete spans marked as conflicts, want 1", conflicts)
	}
}
