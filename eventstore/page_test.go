package eventstore_test

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
)

func TestEventSize(t *testing.T) {
	e := eventstore.Event{ID: "id", Type: "type", Data: make([]byte, 10), Metadata: map[string]string{"ab": "cde", "é": ""}}
	if got, want := eventstore.EventSize(e), 10+2+3+2; got != want {
		t.Errorf("EventSize = %d, want %d (Data plus metadata keys and values)", got, want)
	}
}
