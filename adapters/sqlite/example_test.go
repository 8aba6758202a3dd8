package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// Open an in-memory store, append to a stream and read it back.
func Example() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	account := store.Stream("account-42")
	res, err := account.Append(ctx, eventstore.NoStream,
		eventstore.Event{Type: "opened", Data: []byte(`{"owner":"ada"}`)},
		eventstore.Event{Type: "deposited", Data: []byte(`{"amount":10}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version:", res.Version)

	for r, err := range account.Read(ctx, eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Version, r.Type, string(r.Data))
	}
	// Output:
	// version: 2
	// 1 opened {"owner":"ada"}
	// 2 deposited {"amount":10}
}

// An append with a stale expected version fails with a conflict.
func ExampleStore_Append() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if _, err := store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{ID: "e1", Type: "placed"}); err != nil {
		log.Fatal(err)
	}
	// A retry of the same event is recognised by its ID.
	res, err := store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{ID: "e1", Type: "placed"})
	fmt.Println(res.Version, len(res.Duplicates), err)

	_, err = store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "paid"})
	var conflict *eventstore.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: actual version", conflict.Actual)
	}
	// Output:
	// 1 1 <nil>
	// conflict: actual version 1
}

// Read all streams in global order, filtered by a stream-ID prefix.
func ExampleStore_Read() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	for _, id := range []string{"cart-1", "user-1", "cart-2"} {
		if _, err := store.Append(ctx, id, eventstore.Any, eventstore.Event{Type: "created"}); err != nil {
			log.Fatal(err)
		}
	}
	opts := eventstore.ReadOptions{Filter: eventstore.Filter{StreamPrefix: "cart-"}}
	for r, err := range store.Read(ctx, eventstore.AllStreams, opts) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Position, r.StreamID)
	}
	// Output:
	// 1 cart-1
	// 3 cart-2
}

// Watch a stream from its start: stored events first, then live ones.
func ExampleStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if _, err := store.Append(ctx, "chat", eventstore.Any, eventstore.Event{Type: "hello"}); err != nil {
		log.Fatal(err)
	}
	seen := 0
	for r, err := range store.Watch(ctx, "chat", eventstore.WatchOptions{From: eventstore.FromStart()}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Version, r.Type)
		if seen++; seen == 1 {
			// Appended while watching: delivered live.
			if _, err := store.Append(ctx, "chat", eventstore.Any, eventstore.Event{Type: "bye"}); err != nil {
				log.Fatal(err)
			}
		} else {
			cancel()
		}
	}
	// Output:
	// 1 hello
	// 2 bye
}

// Open a file store with options; several processes may open the same file.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "esv2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"),
		sqlite.WithReaders(2),
		sqlite.WithPollInterval(10*time.Millisecond),
		sqlite.WithBusyTimeout(2*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if _, err := store.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "created"}); err != nil {
		log.Fatal(err)
	}
	info, err := store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events:", info.Count, "commits:", store.Stats().Commits)
	// Output:
	// events: 1 commits: 1
}

// Delete a stream: its events and snapshots are removed, a tombstone keeps
// its last version, and appending to it is refused for good. Positions are
// never handed out again.
func ExampleStore_DeleteStream() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if _, err := store.Append(ctx, "customer-7", eventstore.NoStream,
		eventstore.Event{Type: "registered", Data: []byte(`{"name":"Ada"}`)},
		eventstore.Event{Type: "moved", Data: []byte(`{"city":"Paris"}`)},
	); err != nil {
		log.Fatal(err)
	}
	if err := store.DeleteStream(ctx, "customer-7", eventstore.Exact(2)); err != nil {
		log.Fatal(err)
	}
	info, err := store.Info(ctx, "customer-7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("deleted %v, version %d, events %d\n", info.Deleted, info.Version, info.Count)

	_, err = store.Append(ctx, "customer-7", eventstore.Any, eventstore.Event{Type: "moved"})
	fmt.Println("append refused:", errors.Is(err, eventstore.ErrStreamDeleted))

	res, err := store.Append(ctx, "customer-8", eventstore.NoStream, eventstore.Event{Type: "registered"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("next position:", res.Position)

	// The housekeeping that takes the deleted bytes out of the files
	// (nothing to do in memory).
	if err := store.Purge(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// deleted true, version 2, events 0
	// append refused: true
	// next position: 3
}

// Truncate a long stream kept short by snapshots: the events before a
// version are removed, the tail stays, and versions go on.
func ExampleStore_TruncateStream() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	stream := store.Stream("sensor-1")
	for i := 1; i <= 5; i++ {
		if _, err := stream.Append(ctx, eventstore.Any, eventstore.Event{Type: "measured", Data: []byte(fmt.Sprint(i * 10))}); err != nil {
			log.Fatal(err)
		}
	}
	if err := stream.SaveSnapshot(ctx, "", 4, "v1", []byte("sum=100")); err != nil {
		log.Fatal(err)
	}
	// Keep version 4 (the snapshot's) and after.
	if err := stream.Truncate(ctx, 4); err != nil {
		log.Fatal(err)
	}
	if _, err := stream.Append(ctx, eventstore.Exact(5), eventstore.Event{Type: "measured", Data: []byte("60")}); err != nil {
		log.Fatal(err)
	}
	for r, err := range stream.Read(ctx, eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Version, string(r.Data))
	}
	info, err := stream.Info(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("version %d, events %d\n", info.Version, info.Count)
	// Output:
	// 4 40
	// 5 50
	// 6 60
	// version 6, events 3
}
