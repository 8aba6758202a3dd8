// Command postgres runs esv2 on PostgreSQL: it opens a store in its own
// schema (creating it), appends and reads back. The README shows this
// file; internal/readmetest keeps the two equal.
//
//	ESV2_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go run ./examples/postgres
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
)

func main() {
	if err := run(context.Background(), os.Getenv("ESV2_POSTGRES_DSN"), "esv2_example", os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dsn, schema string, out io.Writer) (err error) {
	// WithMigrate creates the schema's tables, or upgrades them, under an
	// advisory lock, so that instances starting together migrate once.
	store, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	orders := store.Stream("order-7")
	version, err := orders.Version(ctx)
	if err != nil {
		return err
	}
	// Every instance of the application can append; the expected version
	// makes two of them racing on one order conflict instead of interleave.
	res, err := orders.Append(ctx, eventstore.Exact(version),
		eventstore.Event{Type: "order.placed", Data: []byte(`{"total":42}`)})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "order-7 is at version", res.Version)

	// All streams, in global order: positions never skip on PostgreSQL.
	for rec, err := range store.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "position %d: %s v%d %s\n", rec.Position, rec.StreamID, rec.Version, rec.Type)
	}
	return nil
}
