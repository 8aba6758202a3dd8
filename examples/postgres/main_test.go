package main

import (
	"bytes"
	"testing"

	"github.com/esv2/esv2/internal/pgtest"
	"github.com/google/go-cmp/cmp"
)

// TestRun runs the example twice on a fresh schema and checks what it
// prints: the second run appends after the first.
func TestRun(t *testing.T) {
	schema := pgtest.FreshSchema(t, "esv2_example_test_")
	dsn := pgtest.DSN(t)
	var out bytes.Buffer
	for range 2 {
		if err := run(t.Context(), dsn, schema, &out); err != nil {
			t.Fatal(err)
		}
	}
	want := `order-7 is at version 1
position 1: order-7 v1 order.placed
order-7 is at version 2
position 1: order-7 v1 order.placed
position 2: order-7 v2 order.placed
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
