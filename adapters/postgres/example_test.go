package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
)

// Open a store (creating its schema), append to a stream, read it back and
// follow all streams. It needs a database: set ESV2_POSTGRES_DSN.
func Example() {
	dsn := os.Getenv("ESV2_POSTGRES_DSN") // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	if dsn == "" {
		return
	}
	ctx := context.Background()
	store, err := postgres.Open(ctx, dsn, postgres.WithSchema("esv2_example"), postgres.WithMigrate())
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	account := store.Stream("account-42")
	res, err := account.Append(ctx, eventstore.Any,
		eventstore.Event{Type: "opened", Data: []byte(`{"owner":"ada"}`), Metadata: map[string]string{"user": "ada"}},
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

	// Follow every stream from a saved checkpoint; positions are in commit
	// order, so resuming After(checkpoint) never skips an event.
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	for r, err := range store.Watch(watchCtx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.After(res.Position - 1)}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("seen", r.StreamID, r.Version, "at", r.Position)
		stop() // a real consumer would keep going and save r.Position
	}
}

// Open a store behind pgbouncer in transaction-pooling mode: the pool goes
// through pgbouncer, LISTEN goes straight to PostgreSQL.
func ExampleWithListenDSN() {
	ctx := context.Background()
	store, err := postgres.Open(ctx, "postgres://app@pgbouncer:6432/app",
		postgres.WithListenDSN("postgres://app@db:5432/app"))
	if err != nil {
		log.Print(err)
		return
	}
	defer store.Close()
}
