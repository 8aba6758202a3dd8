package eventstore_test

import (
	"errors"
	"fmt"

	"github.com/esv2/esv2/eventstore"
)

func ExampleExpectedVersion_Matches() {
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream, eventstore.StreamExists, eventstore.Exact(3)} {
		fmt.Printf("%-13s matches 0: %-5v matches 3: %v\n", exp, exp.Matches(0), exp.Matches(3))
	}
	// Output:
	// any           matches 0: true  matches 3: true
	// no stream     matches 0: true  matches 3: false
	// stream exists matches 0: false matches 3: true
	// 3             matches 0: false matches 3: true
}

func ExampleConflictError() {
	// What an adapter returns, wrapped or not, when the expected version
	// does not match.
	err := fmt.Errorf("append: %w", &eventstore.ConflictError{StreamID: "acc-1", Expected: eventstore.Exact(4), Actual: 6})

	var conflict *eventstore.ConflictError
	if errors.Is(err, eventstore.ErrConcurrency) && errors.As(err, &conflict) {
		fmt.Printf("stream %s moved on to version %d; reload and retry\n", conflict.StreamID, conflict.Actual)
	}
	// Output:
	// stream acc-1 moved on to version 6; reload and retry
}
