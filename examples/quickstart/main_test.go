package main

import (
	"testing"

	"github.com/esv2/esv2/internal/stdouttest"
	"github.com/google/go-cmp/cmp"
)

// TestOutput runs the quick start and checks what it prints, so the
// README's promise of what it does stays true.
func TestOutput(t *testing.T) {
	got := stdouttest.Capture(t, main)

	want := `cart-1 is at version 2
conflict: expected no stream, actual 2
retry stored 0 new events
v1 cart.item_added {"sku":"apple"}
v2 cart.item_added {"sku":"pear"}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quickstart output (-want +got):\n%s", diff)
	}
}
