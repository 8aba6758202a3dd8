// Command pgterminate measures what PostgreSQL appends and Repository
// updates answer, and what they store, while the server terminates their
// connections (issue 9 item 1): the measurement behind the figures
// ("16 goroutines, backends terminated every ~30 ms for 30 s, no server
// setting changed").
//
// For each workload (any: appends of events without IDs with Any; exact:
// the same with Exact expectations, each goroutine on its own stream;
// update: Repository.Update without a command ID, each goroutine on its own
// counter), it opens a store on a fresh schema, runs the torture package's
// commit workload for -duration with -writers goroutines while another
// connection terminates the store's connections (found by their
// application_name) every -every, then reads the store back and checks it
// with torture.CheckCommit. It prints, per workload, the answers and the
// violations: operations stored twice (split by answer), refused
// operations that were stored (false conflicts), acknowledged ones that
// were lost.
//
//	ESV2_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//		go run ./internal/torture/cmd/pgterminate -duration 30s -writers 16 -every 30ms
//
// It exits with status 1 when any violation was found.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/internal/torture"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	dsn       string
	duration  time.Duration
	writers   int
	every     time.Duration
	workloads string
	target    string
	samples   int
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pgterminate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.dsn, "dsn", os.Getenv("ESV2_POSTGRES_DSN"), "PostgreSQL connection string (default $ESV2_POSTGRES_DSN); a fresh schema per workload is made and dropped")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long each workload runs")
	fs.IntVar(&cfg.writers, "writers", 16, "goroutines appending or updating")
	fs.DurationVar(&cfg.every, "every", 30*time.Millisecond, "interval between two terminations")
	fs.StringVar(&cfg.workloads, "workloads", "any,exact,update", "comma-separated workloads: any, exact, update, mixed (the torture mode's mix)")
	fs.StringVar(&cfg.target, "target", "all", "connections terminated each time: all (the store's), or commit (only those running COMMIT)")
	fs.IntVar(&cfg.samples, "samples", 3, "violations printed per workload")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.dsn == "" {
		fmt.Fprintln(stderr, "pgterminate: set -dsn or ESV2_POSTGRES_DSN")
		return 2
	}
	if cfg.target != "all" && cfg.target != "commit" {
		fmt.Fprintf(stderr, "pgterminate: -target %q: want all or commit\n", cfg.target)
		return 2
	}
	mixes := map[string]torture.Mix{
		"any": {Any: 1}, "exact": {Exact: 1}, "update": {Update: 1}, "mixed": {},
	}
	fmt.Fprintf(stdout, "pgterminate: %d goroutines, connections terminated (%s) every %v, %v per workload\n", cfg.writers, cfg.target, cfg.every, cfg.duration)
	failed := false
	for _, name := range strings.Split(cfg.workloads, ",") {
		mix, ok := mixes[name]
		if !ok {
			fmt.Fprintf(stderr, "pgterminate: unknown workload %q\n", name)
			return 2
		}
		bad, err := measure(context.Background(), cfg, name, mix, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "pgterminate: %s: %v\n", name, err)
			return 1
		}
		failed = failed || bad
	}
	if failed {
		return 1
	}
	return 0
}

// measure runs one workload and prints its figures. It reports whether a
// violation was found.
func measure(ctx context.Context, cfg config, name string, mix torture.Mix, stdout io.Writer) (bool, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, err
	}
	schema := "pgterminate_" + name + "_" + hex.EncodeToString(b[:])
	app := "esv2" + schema
	admin, err := pgx.Connect(ctx, cfg.dsn)
	if err != nil {
		return false, err
	}
	defer func() {
		if err := admin.Close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(stdout, "%s: close admin connection: %v\n", name, err)
		}
	}()
	defer func() {
		if _, err := admin.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			fmt.Fprintf(stdout, "%s: drop schema %s: %v\n", name, schema, err)
		}
	}()
	sep := "?"
	if strings.Contains(cfg.dsn, "?") {
		sep = "&"
	}
	s, err := postgres.Open(ctx, cfg.dsn+sep+"application_name="+app, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		return false, err
	}
	dir, err := os.MkdirTemp("", "pgterminate-")
	if err != nil {
		return false, errors.Join(err, s.Close())
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(stdout, "%s: remove %s: %v\n", name, dir, err)
		}
	}()

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	killed := make(chan [2]int, 1)
	go func() { killed <- terminate(runCtx, admin, app, cfg.every, cfg.target) }()
	werr := torture.RunCommitChild(runCtx, s, torture.CommitConfig{Dir: dir, Child: "m", Writers: cfg.writers, Seed: 1, Mix: mix})
	cancel()
	k := <-killed
	if err := s.Close(); err != nil {
		fmt.Fprintf(stdout, "%s: close: %v\n", name, err)
	}
	if werr != nil {
		return false, werr
	}

	s, err = postgres.Open(ctx, cfg.dsn, postgres.WithSchema(schema), postgres.WithoutListen())
	if err != nil {
		return false, err
	}
	defer func() {
		if err := s.Close(); err != nil {
			fmt.Fprintf(stdout, "%s: close: %v\n", name, err)
		}
	}()
	in, err := torture.CollectCommit(ctx, s, dir)
	if err != nil {
		return false, err
	}
	rep := torture.CheckCommit(in)
	c := rep.Counts
	kinds := []torture.OpKind{torture.OpAny, torture.OpExact, torture.OpUpdate}
	sum := func(suffix string) int {
		n := 0
		for _, kd := range kinds {
			n += c[string(kd)+" "+suffix]
		}
		return n
	}
	fmt.Fprintf(stdout, "%s: %d operations: %d acknowledged, %d refused (conflict), %d unknown outcome (ErrUnknownOutcome), %d other errors, %d unanswered; %d terminations (%d connections)\n",
		name, len(in.Ops), sum("ack"), sum("refused"), sum("unknown"), sum("error"), sum("unanswered"), k[0], k[1])
	fmt.Fprintf(stdout, "%s:   acknowledged and stored twice or more: %d; refused but stored (false conflicts): %d; unknown outcome stored twice: %d; other error stored twice: %d; acknowledged but lost: %d; violations in all: %d\n",
		name, sum("ack doubled"), sum("refused false-conflict"), sum("unknown doubled"), sum("error doubled"), sum("ack loss"), len(rep.Violations))
	fmt.Fprintf(stdout, "%s:   counts: %s\n", name, strings.Join(rep.SortedCounts(), " "))
	for i, v := range rep.Violations {
		if i == cfg.samples {
			break
		}
		fmt.Fprintf(stdout, "%s:   violation: %v\n", name, v)
	}
	return len(rep.Violations) > 0, nil
}

// terminate terminates the connections named app every interval until ctx
// ends, and returns how many times it asked and how many connections it
// terminated.
func terminate(ctx context.Context, admin *pgx.Conn, app string, every time.Duration, target string) [2]int {
	query := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()`
	if target == "commit" {
		query += ` AND state = 'active' AND query = 'COMMIT'`
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var out [2]int
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		// Not cancelled with ctx: pgx closes a connection whose query is
		// cancelled, and admin drops the schema afterwards.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		var n int
		err := admin.QueryRow(qctx, query, app).Scan(&n)
		cancel()
		if err != nil {
			return out
		}
		out[0]++
		out[1] += n
	}
}
