package esotel_test

import (
	"errors"
	"testing"

	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/subscription"
)

// TestReplayedMetric: each replay a member makes at a request counts in
// esv2.subscription.replays, whatever its outcome.
func TestReplayedMetric(t *testing.T) {
	tel := newTelemetry(t)
	h := esotel.SubscriptionHooks(tel.opts()...)
	if h.Replayed == nil {
		t.Fatal("SubscriptionHooks sets no Replayed hook")
	}
	h.Replayed(t.Context(), "projector", subscription.Parked{Position: 4}, nil)
	h.Replayed(t.Context(), "projector", subscription.Parked{Position: 5}, errors.New("still broken"))
	h.Replayed(t.Context(), "projector", subscription.Parked{Position: 6}, nil)
	if got := tel.metrics(t)["esv2.subscription.replays"]; got != 3 {
		t.Errorf("esv2.subscription.replays = %d, want 3", got)
	}
}
