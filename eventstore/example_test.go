package eventstore_test

import (
	"context"
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

func ExampleValidateAppend() {
	err := eventstore.ValidateAppend(eventstore.AllStreams, eventstore.Any, []eventstore.Event{{Type: "t"}}, 0)
	fmt.Println(errors.Is(err, eventstore.ErrInvalidInput))
	fmt.Println(err)
	// Output:
	// true
	// eventstore: invalid input: stream ID: "$all" is the all-streams log and cannot be appended to
}

func ExampleFollow() {
	// An adapter's Watch: a page query over its table, and the store's
	// Notifier, woken by every append.
	var table []eventstore.Recorded
	appendEvent := func(typ string) {
		v := uint64(len(table) + 1)
		table = append(table, eventstore.Recorded{Event: eventstore.Event{Type: typ}, StreamID: "s", Version: v, Position: v})
	}
	page := func(_ context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
		var out []eventstore.Recorded
		for _, r := range table {
			if r.Version > after && len(out) < limit {
				out = append(out, r)
			}
		}
		return out, nil
	}
	n := eventstore.NewNotifier()
	appendEvent("opened")
	appendEvent("deposited")

	for r, err := range eventstore.Follow(context.Background(), n, 0, page, func(r eventstore.Recorded) uint64 { return r.Version }) {
		if err != nil {
			fmt.Println("watch ended:", err)
			break
		}
		fmt.Println(r.Version, r.Type)
		if r.Version == 2 { // caught up: append one more, live
			appendEvent("withdrawn")
			n.Notify()
		}
		if r.Version == 3 {
			n.Close() // as the store's Close does
		}
	}
	// Output:
	// 1 opened
	// 2 deposited
	// 3 withdrawn
	// watch ended: eventstore: store closed
}
