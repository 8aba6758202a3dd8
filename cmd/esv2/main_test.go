package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

// TestMain makes the test binary the esv2 command when testscript runs it
// as "esv2" (or when ESV2_TEST_AS_COMMAND=1), and a helper that fills a
// demo store as "esv2-seed".
func TestMain(m *testing.M) {
	// Tests that need the command as a process of its own (to signal it)
	// run the test binary with this variable set.
	if os.Getenv("ESV2_TEST_AS_COMMAND") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	testscript.Main(m, map[string]func(){
		"esv2": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		"esv2-seed": func() {
			if len(os.Args) != 2 {
				fmt.Fprintln(os.Stderr, "usage: esv2-seed FILE")
				os.Exit(2)
			}
			if err := seed(context.Background(), os.Args[1]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		},
		// esv2-lifecycle FILE deletes and truncates streams of the demo
		// store through the API, as an application would (issue 12).
		"esv2-lifecycle": func() {
			if len(os.Args) != 2 {
				fmt.Fprintln(os.Stderr, "usage: esv2-lifecycle FILE")
				os.Exit(2)
			}
			if err := lifecycle(context.Background(), os.Args[1]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		},
	})
}

// lifecycle truncates order-1 of the demo store before version 3 and
// deletes order-2.
func lifecycle(ctx context.Context, path string) error {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	return errors.Join(s.TruncateStream(ctx, "order-1", 3), s.DeleteStream(ctx, "order-2", eventstore.Any), s.Close())
}

// seedTime is the time of the demo store's first event; each next event
// is a minute later, so that outputs are the same on every run.
var seedTime = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// seed creates the demo store at path: three streams whose data is
// msgpack (esv2's default encoding), JSON and raw bytes, with event IDs,
// metadata and a snapshot.
func seed(ctx context.Context, path string) error {
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close() // on errors; the second Close of a Store is harmless
	type placed struct {
		Customer string
		Total    int
	}
	type shipped struct {
		Carrier string
	}
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	n := 0
	ev := func(id, typ string, data []byte, md map[string]string) eventstore.Event {
		n++
		return eventstore.Event{ID: id, Type: typ, Data: data, Metadata: md, Time: seedTime.Add(time.Duration(n-1) * time.Minute)}
	}
	appends := []struct {
		stream string
		events []eventstore.Event
	}{
		{"order-1", []eventstore.Event{
			ev("e1", "OrderPlaced", mp(placed{"ada", 30}), map[string]string{"tenant": "acme"}),
			ev("e2", "OrderShipped", mp(shipped{"ups"}), map[string]string{"tenant": "acme"}),
		}},
		{"order-2", []eventstore.Event{
			ev("e3", "OrderPlaced", []byte(`{"Customer":"bob","Total":12}`), map[string]string{"tenant": "globex"}),
		}},
		{"user-1", []eventstore.Event{
			ev("", "AvatarSet", []byte{0xff, 0x00, 0xfe}, nil),
		}},
		{"order-1", []eventstore.Event{
			ev("e4", "OrderPaid", mp(map[string]any{"amount": 30}), map[string]string{"tenant": "acme"}),
		}},
	}
	for _, a := range appends {
		if _, err := s.Append(ctx, a.stream, eventstore.Any, a.events...); err != nil {
			return err
		}
	}
	// A subscription of two partitions at position 3 that parked the
	// event at position 4.
	if _, err := s.Subscriptions().Register(ctx, "projector", 2, 3); err != nil {
		return err
	}
	if err := s.Subscriptions().Park(ctx, "projector", subscription.Parked{
		Position: 4, StreamID: "user-1", Version: 1, Type: "AvatarSet",
		Error: "decode avatar: unexpected byte 0xff", Attempts: 3, Time: seedTime.Add(2 * time.Hour),
	}); err != nil {
		return err
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "order-1", Name: "aggregate", Version: 2, Schema: "v1", Data: mp(placed{"ada", 30})}); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	// The store stamps snapshots with the time of saving: set a fixed one.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "UPDATE snapshots SET time = ?", seedTime.Add(time.Hour).UnixNano())
	return err
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		// ESV2_UPDATE_SCRIPTS=1 rewrites the expected outputs in the
		// scripts (review the diff before committing it).
		UpdateScripts: os.Getenv("ESV2_UPDATE_SCRIPTS") != "",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sqlexec": sqlexec,
			"pgexec":  pgexec,
			"exits":   exits,
		},
		// [pg] holds when ESV2_POSTGRES_DSN names a database; each script
		// then gets its own schema name in $SCHEMA (dropped at its end)
		// and the DSN in $DSN.
		Condition: func(cond string) (bool, error) {
			if cond != "pg" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			return os.Getenv(pgtest.EnvDSN) != "", nil
		},
		Setup: func(env *testscript.Env) error {
			dsn := os.Getenv(pgtest.EnvDSN)
			if dsn == "" {
				return nil
			}
			var b [6]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			schema := "esv2cli_" + hex.EncodeToString(b[:])
			env.Setenv("DSN", dsn)
			env.Setenv("SCHEMA", schema)
			env.Defer(func() {
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					env.T().Fatal(err)
				}
				defer conn.Close(ctx)
				if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
					env.T().Fatal(err)
				}
			})
			return nil
		},
	})
}

// exits N PROGRAM ARGS... runs PROGRAM like exec and checks that its exit
// status is N: the statuses are part of the command's interface.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits STATUS PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// pgexec SQL runs SQL on the script's PostgreSQL database ($DSN), with
// the search path set to the script's schema ($SCHEMA).
func pgexec(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pgexec SQL")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ts.Getenv("DSN"))
	ts.Check(err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{ts.Getenv("SCHEMA")}.Sanitize())
	ts.Check(err)
	_, err = conn.Exec(ctx, args[0])
	ts.Check(err)
}

// sqlexec FILE SQL runs SQL on an SQLite file directly: how the scripts
// break a store for verify to find.
func sqlexec(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlexec FILE SQL")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	_, err = db.Exec(args[1])
	ts.Check(err)
}
