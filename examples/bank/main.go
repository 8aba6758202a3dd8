// Command bank is esv2's end-to-end example: a small event-sourced bank.
// It opens accounts, deposits, refuses an overdraft, lets two tellers race
// on one account, transfers money idempotently, shows snapshots at work and
// prints every event as a watcher of all streams sees it.
//
//	go run ./examples/bank            # in-memory SQLite
//	go run ./examples/bank -db bank.db # a new SQLite file
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

func main() {
	db := flag.String("db", "", "SQLite database `file` (a new one; default: in memory)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, os.Stdout, *db); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// mainErr opens the store the flags name and runs the bank on it.
func mainErr(ctx context.Context, w io.Writer, db string) error {
	store, where, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	runErr := run(ctx, w, store, where)
	if err := store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func openStore(ctx context.Context, db string) (eventstore.Store, string, error) {
	where := "SQLite in memory"
	if db != "" {
		where = "SQLite file " + db
	}
	store, err := sqlite.Open(ctx, db)
	return store, where, err
}
