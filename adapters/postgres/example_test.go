package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
)

// Open a store (creating its schema), append to a stream, and follow all
// streams from a checkpoint, as a projection in another process would. It
// needs a database: set ESV2_POSTGRES_DSN.
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

	res, err := store.Stream("account-42").Append(ctx, eventstore.Any,
		eventstore.Event{Type: "opened", Data: []byte(`{"owner":"ada"}`), Metadata: map[string]string{"user": "ada"}},
		eventstore.Event{Type: "deposited", Data: []byte(`{"amount":10}`)},
	)
	if err != nil {
		log.Fatal(err)
	}

	// Follow every stream from the checkpoint just before this append;
	// positions are in commit order, so resuming After(checkpoint) never
	// skips an event.
	checkpoint := res.Position - uint64(res.Appended)
	for r, err := range store.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.After(checkpoint)}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("seen", r.StreamID, r.Version, r.Type, string(r.Data), "at", r.Position)
		if r.Position == res.Position {
			break // a real consumer would keep going, saving r.Position as its checkpoint
		}
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

// Make a store over a pool of your own, configured as Open configures its
// pool: with JIT compilation off in its sessions. It needs a database: set
// ESV2_POSTGRES_DSN.
func ExampleNew() {
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn == "" {
		return
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxConns = 8
	postgres.JITOff(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // the pool stays yours: store.Close leaves it open

	store, err := postgres.New(ctx, pool, postgres.WithSchema("esv2_example"), postgres.WithMigrate())
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var jit string
	if err := pool.QueryRow(ctx, "SHOW jit").Scan(&jit); err != nil {
		log.Fatal(err)
	}
	fmt.Println("jit:", jit) // jit: off
}
