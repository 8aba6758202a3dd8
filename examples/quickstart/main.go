// Command quickstart appends to and reads from an in-memory esv2 event
// store. The README shows this file; internal/readmetest keeps the two equal.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	// "" opens a private in-memory database; pass a file path to persist.
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		return err
	}
	// Close's error counts too: a file store closes its database there.
	defer func() { err = errors.Join(err, store.Close()) }()

	cart := store.Stream("cart-1")

	// Append two events to a stream that must not exist yet.
	res, err := cart.Append(ctx, eventstore.NoStream,
		eventstore.Event{ID: "evt-1", Type: "cart.item_added", Data: []byte(`{"sku":"apple"}`)},
		eventstore.Event{ID: "evt-2", Type: "cart.item_added", Data: []byte(`{"sku":"pear"}`)},
	)
	if err != nil {
		return err
	}
	fmt.Println("cart-1 is at version", res.Version)

	// A writer that still believes the stream is empty loses, and nothing is written.
	_, err = cart.Append(ctx, eventstore.NoStream, eventstore.Event{Type: "cart.checked_out"})
	var conflict *eventstore.ConflictError
	if errors.As(err, &conflict) {
		fmt.Printf("conflict: expected %s, actual %d\n", conflict.Expected, conflict.Actual)
	}

	// Retrying the first append is safe: the event IDs are already stored.
	res, err = cart.Append(ctx, eventstore.NoStream,
		eventstore.Event{ID: "evt-1", Type: "cart.item_added", Data: []byte(`{"sku":"apple"}`)},
		eventstore.Event{ID: "evt-2", Type: "cart.item_added", Data: []byte(`{"sku":"pear"}`)},
	)
	if err != nil {
		return err
	}
	fmt.Println("retry stored", res.Appended, "new events")

	// Reads are iterators: rows stream from the database as you range.
	for rec, err := range cart.Read(ctx, eventstore.ReadOptions{}) {
		if err != nil {
			return err
		}
		fmt.Printf("v%d %s %s\n", rec.Version, rec.Type, rec.Data)
	}
	return nil
}
