// Command bank is esv2's end-to-end example: a small event-sourced bank.
// It opens accounts, deposits, refuses an overdraft, lets two tellers race
// on one account, transfers money idempotently, shows snapshots at work and
// prints every event as a watcher of all streams sees it. On SQLite a
// subscription keeps a read model, a table of balances in the store's own
// database (readmodel.go), which it prints at the end.
//
//	go run ./examples/bank                           # in-memory SQLite
//	go run ./examples/bank -db bank.db                # a new SQLite file
//	go run ./examples/bank -dsn postgres://... [-schema s] # PostgreSQL
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.db, "db", "", "SQLite database `file` (a new one; default: in memory)")
	flag.StringVar(&cfg.dsn, "dsn", "", "PostgreSQL connection `string` (instead of SQLite)")
	flag.StringVar(&cfg.schema, "schema", "esv2_bank", "PostgreSQL `schema` to use with -dsn (a new one)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := mainErr(ctx, os.Stdout, cfg)
	stop() // not deferred: os.Exit below would skip it
	if err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// config holds the command-line flags.
type config struct {
	db     string // SQLite file; "" = in memory
	dsn    string // PostgreSQL; "" = SQLite
	schema string // PostgreSQL schema
}

// mainErr opens the store the flags name and runs the bank on it.
func mainErr(ctx context.Context, w io.Writer, cfg config) error {
	store, where, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	runErr := run(ctx, w, store, where)
	if err := store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func openStore(ctx context.Context, cfg config) (eventstore.Store, string, error) {
	switch {
	case cfg.dsn != "" && cfg.db != "":
		return nil, "", errors.New("give -db or -dsn, not both")
	case cfg.dsn != "":
		store, err := postgres.Open(ctx, cfg.dsn, postgres.WithSchema(cfg.schema), postgres.WithMigrate())
		return store, "PostgreSQL", err
	case cfg.db != "":
		store, err := sqlite.Open(ctx, cfg.db)
		return store, "SQLite file " + cfg.db, err
	default:
		store, err := sqlite.Open(ctx, "")
		return store, "SQLite in memory", err
	}
}
