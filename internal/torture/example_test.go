package torture_test

import (
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/torture"
)

// A writer was told its batch of two events was stored, but the store
// holds only the first: Check reports the loss and the partial batch.
func ExampleCheck() {
	stored := []eventstore.Recorded{
		{Event: eventstore.Event{ID: "e1", Type: "t"}, StreamID: "s", Version: 1, Position: 1},
	}
	batch := torture.Batch{Stream: "s", IDs: []string{"e1", "e2"}}
	for _, v := range torture.Check(torture.Input{
		All:     stored,
		Intents: []torture.Batch{batch},
		Acks:    []torture.Ack{{Batch: batch, Version: 2, Position: 2, Appended: 2}},
	}) {
		fmt.Println(v.Kind)
	}
	// Output:
	// partial-batch
	// loss
}
