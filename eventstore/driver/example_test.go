package driver_test

import (
	"context"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// An adapter's Open puts the front over its driver; applications then use
// the front as an eventstore.Store. (flakyDriver, from this package's
// tests, is a one-stream log in memory.)
func ExampleNew() {
	var store eventstore.Store = driver.New(&flakyDriver{}, driver.Config{MaxEventSize: 1 << 10})
	defer store.Close()
	ctx := context.Background()

	res, err := store.Append(ctx, "counter", eventstore.NoStream, eventstore.Event{Type: "added"})
	fmt.Println(res.Version, err)
	// The front checks input before the driver sees it.
	_, err = store.Append(ctx, "counter", eventstore.Any, eventstore.Event{Type: "added", Data: make([]byte, 2<<10)})
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// eventstore: invalid input: event 0: event size: 2048 bytes is more than the limit of 1024
}
