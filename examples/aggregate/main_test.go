package main

import (
	"testing"

	"github.com/esv2/esv2/internal/stdouttest"
	"github.com/google/go-cmp/cmp"
)

// TestOutput runs the aggregate quick start and checks what it prints.
func TestOutput(t *testing.T) {
	got := stdouttest.Capture(t, main)

	want := "balance 70 at version 2\nwithdraw 500: true\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregate quick start output (-want +got):\n%s", diff)
	}
}
