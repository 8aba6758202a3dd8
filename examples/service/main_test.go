package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/internal/stdouttest"
)

// TestOutput runs the service example and checks what it prints, so the
// README's HTTP mapping stays true.
func TestOutput(t *testing.T) {
	got := stdouttest.Capture(t, main)

	want := `  read model: acc-1 account.opened correlation=req-open-1
POST /accounts/acc-1?owner=ann -> 201 Created 
  read model: acc-1 account.deposited correlation=req-dep-1
POST /accounts/acc-1/deposits?amount=50 -> 200 OK balance 50
POST /accounts/acc-1/deposits?amount=50 -> 200 OK balance 50
POST /accounts/acc-9/deposits?amount=50 -> 404 Not Found aggregate: update "acc-9": aggregate: no such aggregate: eventstore: not found
POST /accounts/acc-1/deposits?amount=-5 -> 400 Bad Request aggregate: update "acc-1": invalid request: amount -5
PUT /accounts/acc-1/owner?owner=bob -> 409 Conflict eventstore: concurrency conflict on stream "acc-1": expected version 1, actual 2
read model batches link to 2 appending spans
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service output (-want +got):\n%s", diff)
	}
}
