//go:build torture

package torture_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/internal/torture"
)

var (
	rounds   = flag.Int("torture.rounds", 3, "kill/restart rounds per adapter")
	round    = flag.Duration("torture.round", 2*time.Second, "longest time a round lets the children run before killing them")
	children = flag.Int("torture.children", 2, "writer/watcher processes")
	writers  = flag.Int("torture.writers", 4, "writer goroutines per process")
	every    = flag.Duration("torture.terminate", 30*time.Millisecond, "mean interval between two terminations of the COMMIT-termination mode (each interval is drawn between 1/3 and 5/3 of it)")
)

// Environment of a child process.
const (
	envChild   = "ESV2_TORTURE_CHILD"   // the child's name; set only in children
	envRun     = "ESV2_TORTURE_RUN"     // the round number
	envDir     = "ESV2_TORTURE_DIR"     // the log directory
	envBackend = "ESV2_TORTURE_BACKEND" // "sqlite:<file>" or "postgres:<schema>"
	envWriters = "ESV2_TORTURE_WRITERS"
	envMode    = "ESV2_TORTURE_MODE" // "" (the ID workload) or "commit"
)

// TestMain runs the child's workload when the binary was re-executed as a
// child, and the tests otherwise.
func TestMain(m *testing.M) {
	if name := os.Getenv(envChild); name != "" {
		if err := child(name); err != nil {
			fmt.Fprintf(os.Stderr, "torture child %s: %v\n", name, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(name string) error {
	run, _ := strconv.Atoi(os.Getenv(envRun))
	nw, _ := strconv.Atoi(os.Getenv(envWriters))
	// A child lives until it is killed; the bound only keeps an orphan
	// (a parent that died) from running forever.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := openBackend(ctx, os.Getenv(envBackend))
	// A consumer's connections are terminated at random, even while it
	// opens its store: it tries again, as a restarted service would.
	for try := 0; err != nil && os.Getenv(envMode) == modeConsumer && try < 20; try++ {
		time.Sleep(50 * time.Millisecond) // a pause between attempts, not a synchronisation
		s, err = openBackend(ctx, os.Getenv(envBackend))
	}
	if err != nil {
		return err
	}
	defer s.Close()
	// The parent starts the round's clock (and its faults) when every
	// child has said it is ready.
	if _, err := fmt.Println(readyLine); err != nil {
		return err
	}
	seed, _ := strconv.ParseUint(strings.TrimPrefix(name, "c"), 10, 64)
	switch os.Getenv(envMode) {
	case modeSubWriter, modeConsumer:
		// The parent stops a consumer (a member leaving its group) with
		// SIGTERM: Run then writes its checkpoints and leaves.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
		defer stop()
		return subChild(ctx, s, name, run)
	}
	if os.Getenv(envMode) == modeLifecycle {
		return torture.RunLifecycleChild(ctx, s, torture.Config{Dir: os.Getenv(envDir), Child: name, Run: run, Writers: nw, Seed: seed})
	}
	if os.Getenv(envMode) == "commit" {
		return torture.RunCommitChild(ctx, s, torture.CommitConfig{Dir: os.Getenv(envDir), Child: name, Run: run, Writers: nw, Seed: seed})
	}
	return torture.RunChild(ctx, s, torture.Config{Dir: os.Getenv(envDir), Child: name, Run: run, Writers: nw, Seed: seed})
}

// readyLine is what a child prints on its standard output once its store
// is open.
const readyLine = "ready"

func appName(schema string) string { return "esv2torture_" + schema }

func openBackend(ctx context.Context, backend string) (eventstore.Store, error) {
	kind, arg, _ := strings.Cut(backend, ":")
	switch kind {
	case "sqlite":
		return sqlite.Open(ctx, arg, sqlite.WithBusyTimeout(busyTimeout))
	case "postgres":
		dsn := os.Getenv(pgtest.EnvDSN)
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		app := appName(arg)
		if os.Getenv(envMode) == modeConsumer {
			app = consumerApp(arg) // the connections the subscription run terminates
		}
		return postgres.Open(ctx, dsn+sep+"application_name="+app, postgres.WithSchema(arg), postgres.WithPollInterval(200*time.Millisecond))
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}

func TestTortureSQLite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "events.db")
	s, err := sqlite.Open(t.Context(), file) // creates the schema once, before the children race
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Fault: another connection holds the write lock for longer than the
	// children's busy timeout, so some of their appends fail with ErrBusy
	// (and must then be stored whole or not at all).
	held := 0
	fault := func(ctx context.Context) {
		db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Logf("could not take the write lock: %v", err)
			return
		}
		held++
		time.Sleep(busyTimeout * 3 / 2) // holding the lock is the fault itself
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
	runTorture(t, dir, "sqlite:"+file, fault)
	t.Logf("write lock held by another connection %d times", held)
	if held == 0 {
		t.Errorf("the write lock was never held: the fault was not exercised")
	}
}

// busyTimeout is the children's SQLite busy timeout.
const busyTimeout = 400 * time.Millisecond

// migratedSchema migrates schema (made by pgtest.FreshSchema) for the
// children and returns an admin connection to terminate their sessions
// with, closed when the test ends.
func migratedSchema(t *testing.T, schema string) *pgx.Conn {
	t.Helper()
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMigrate(), postgres.WithoutListen())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.Close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("admin connection Close: %v", err)
		}
	})
	return admin
}

func TestTorturePostgres(t *testing.T) {
	schema := pgtest.FreshSchema(t, "torture_") // dropped when the test ends
	admin := migratedSchema(t, schema)
	// Fault: terminate the children's server connections (pool and
	// LISTEN) at random moments, mid-append and mid-watch.
	terminated := 0
	fault := func(ctx context.Context) {
		var n int
		err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, appName(schema)).Scan(&n)
		if err != nil && ctx.Err() == nil {
			t.Errorf("pg_terminate_backend: %v", err)
		}
		terminated += n
	}
	runTorture(t, t.TempDir(), "postgres:"+schema, fault)
	t.Logf("server connections terminated: %d", terminated)
	if terminated == 0 {
		t.Errorf("no server connection was terminated: the fault was not exercised")
	}
}

// TestTorturePostgresCommit is the COMMIT-termination mode (issue 9 item
// 1): the children append events WITHOUT IDs, with Exact and Any
// expectations, and run Repository.Update without a command ID, while
// the parent terminates their server connections every 10-50 ms
// (-torture.terminate), aiming at a group's COMMIT; the children are also SIGKILLed and restarted.
// Without event IDs nothing hides an append that is executed twice: the
// checker counts each operation's copies by the marker in its events'
// Data, and reports an acknowledged operation stored twice, a refused one
// stored at all, or one with an unknown outcome stored twice.
func TestTorturePostgresCommit(t *testing.T) {
	schema := pgtest.FreshSchema(t, "torture_commit_")
	admin := migratedSchema(t, schema)
	ctx := t.Context()
	terminated, hits, atCommit := 0, 0, 0
	killer := func(ctx context.Context) {
		terminated += terminateEvery(ctx, t, admin, appName(schema), *every/3, *every*5/3, &hits, &atCommit)
	}
	dir := t.TempDir()
	start := time.Now()
	runRounds(t, dir, "postgres:"+schema, "commit", nil, killer)

	s2, err := openBackend(ctx, "postgres:"+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	in, err := torture.CollectCommit(ctx, s2, dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := torture.CheckCommit(in)
	t.Logf("torture postgres commit: %d rounds of %d processes x %d writers in %v; %d terminations asked, %d connections ended; %d operations, %d events stored; %v; violations: %d",
		*rounds, *children, *writers, time.Since(start).Round(time.Millisecond), hits, terminated, len(in.Ops), len(in.All), rep.SortedCounts(), len(rep.Violations))
	sampled := map[torture.Outcome]bool{}
	for _, op := range in.Ops {
		if op.Err != "" && !sampled[op.Outcome] {
			sampled[op.Outcome] = true
			t.Logf("sample %s answer: %s", op.Outcome, op.Err)
		}
	}
	for i, v := range rep.Violations {
		if i == 20 {
			t.Errorf("... and %d more", len(rep.Violations)-20)
			break
		}
		t.Errorf("violation: %v", v)
	}
	selfTestCommit(t, in)
	if terminated == 0 {
		t.Errorf("no server connection was terminated: the fault was not exercised")
	}
	for _, k := range []torture.OpKind{torture.OpExact, torture.OpAny, torture.OpUpdate} {
		switch n := rep.Counts[string(k)+" ack"]; {
		case n > 0:
		case k != torture.OpUpdate:
			t.Errorf("no %s operation was acknowledged: the run did nothing", k)
		case len(in.Ops) == 0:
		default:
			// An Update is a read and an append, both cut by the
			// terminations: on a loaded machine a short run may
			// acknowledge none (1 in a run of 139 operations seen).
			// Its answers are still checked; say that none succeeded.
			t.Logf("no update was acknowledged in this run: only their refusals and errors were checked")
		}
	}
	// Whether the fault reached the window it aims at. (Counting failed
	// operations instead, as this test first did, stopped working once the
	// store learnt to answer most of those appends with their true
	// result: a short run can have none.)
	if atCommit == 0 {
		t.Errorf("no connection was terminated while it ran COMMIT: the fault was not exercised")
	}
	t.Logf("connections terminated while running COMMIT: %d", atCommit)
}

// terminateQuery terminates the server connections whose application_name
// is $1 (the torture run's own, so that other tests on the server are not
// hit) and returns how many there were.
const terminateQuery = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()`

// terminateEvery terminates server connections named app (by their
// application_name) at random intervals between lo and hi until ctx ends:
// seven times in eight those running COMMIT, else those running any
// statement. It returns the number of connections terminated and adds the
// number of attempts to tries.
func terminateEvery(ctx context.Context, t *testing.T, admin *pgx.Conn, app string, lo, hi time.Duration, tries, atCommit *int) int {
	terminated := 0
	for {
		timer := time.NewTimer(lo + rand.N(hi-lo+1))
		select {
		case <-ctx.Done():
			timer.Stop()
			return terminated
		case <-timer.C:
		}
		// Only connections running a statement: mostly a COMMIT (the
		// window of issue 9 item 1), else any statement (an append
		// before its COMMIT, a read). Idle ones are left alone:
		// terminating every connection every 30 ms starves the pool of
		// a loaded machine (each new connection is killed before it has
		// run anything; measured: 757 operations in 3 rounds with this
		// choice, 80 when one tick in eight terminated every
		// connection).
		query := terminateQuery + ` AND state = 'active'`
		commit := rand.N(8) != 0
		if commit {
			query += ` AND lower(query) = 'commit'` // a group's COMMIT, a deletion's commit (pgx)
		}
		// Not cancelled with ctx: pgx closes a connection whose query is
		// cancelled, and the next round needs it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		var n int
		err := admin.QueryRow(qctx, query, app).Scan(&n)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("pg_terminate_backend: %v", err)
			}
			return terminated
		}
		*tries++
		terminated += n
		if commit {
			*atCommit += n
		}
	}
}

// selfTestCommit injects a doubled append, a doubled Update and a false
// conflict into the run's real data and checks that the checker reports
// each, on top of what it reported for the data as stored.
func selfTestCommit(t *testing.T, in torture.CommitInput) {
	t.Helper()
	base := torture.CheckCommit(in).Counts
	copies := map[string]int{}
	last := map[string]uint64{}
	var top uint64
	for _, r := range in.All {
		copies[r.Marker]++
		last[r.Stream] = r.Version
		top = r.Position
	}
	// once returns an acknowledged operation of kind stored exactly once.
	once := func(kinds ...torture.OpKind) (torture.Op, bool) {
		for _, op := range in.Ops {
			if op.Outcome == torture.Acked && slices.Contains(kinds, op.Kind) && copies[op.Markers[0]] == 1 {
				return op, true
			}
		}
		return torture.Op{}, false
	}
	doubled := func(op torture.Op) torture.CommitInput {
		out := torture.CommitInput{All: slices.Clone(in.All), Ops: in.Ops}
		for i, m := range op.Markers {
			out.All = append(out.All, torture.Stored{Marker: m, Stream: op.Stream, Version: last[op.Stream] + 1 + uint64(i), Position: top + 1 + uint64(i)})
		}
		return out
	}
	refused := func(op torture.Op) torture.CommitInput {
		out := torture.CommitInput{All: in.All, Ops: slices.Clone(in.Ops)}
		for i := range out.Ops {
			if out.Ops[i].Markers[0] == op.Markers[0] {
				out.Ops[i].Outcome, out.Ops[i].Err = torture.Refused, "injected conflict"
			}
		}
		return out
	}
	for _, c := range []struct {
		name   string
		kinds  []torture.OpKind
		inject func(torture.Op) torture.CommitInput
		want   torture.Kind
	}{
		{"doubled append", []torture.OpKind{torture.OpExact, torture.OpAny}, doubled, torture.Doubled},
		{"update applied twice", []torture.OpKind{torture.OpUpdate}, doubled, torture.Doubled},
		{"false conflict", []torture.OpKind{torture.OpExact}, refused, torture.FalseConflict},
	} {
		op, ok := once(c.kinds...)
		if !ok && c.name == "update applied twice" {
			// See the note on updates above; the doubled append covers
			// the same check.
			t.Logf("self-test %s: no acknowledged update stored once to inject it into", c.name)
			continue
		}
		if !ok {
			t.Errorf("self-test %s: no acknowledged %v operation stored once to inject it into", c.name, c.kinds)
			continue
		}
		injected := c.inject(op)
		outcome := torture.Acked
		if c.want == torture.FalseConflict {
			outcome = torture.Refused
		}
		key := string(op.Kind) + " " + string(outcome) + " " + string(c.want)
		if got, want := torture.CheckCommit(injected).Counts[key], base[key]+1; got != want {
			t.Errorf("self-test: an injected %s (%s %v) in the run's data was not reported: %d %q violations, want %d", c.name, op.Kind, op.Markers, got, key, want)
		} else {
			t.Logf("self-test: injected %s reported (%s)", c.name, key)
		}
	}
}

// runTorture runs the rounds: start the children, let them run, inject
// faults, SIGKILL each at a random moment, and repeat; then check.
func runTorture(t *testing.T, dir, backend string, fault func(context.Context)) {
	start := time.Now()
	faults := runRounds(t, dir, backend, "", fault, nil)
	s, err := openBackend(t.Context(), backend)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, logs, err := torture.Collect(t.Context(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	violations := torture.Check(in)
	seen, unacked := 0, 0
	for _, w := range in.Watches {
		seen += len(w.Seen)
	}
	acked := map[string]bool{}
	for _, a := range in.Acks {
		for _, id := range a.IDs {
			acked[id] = true
		}
	}
	for _, r := range in.All {
		if !acked[r.ID] {
			unacked++
		}
	}
	t.Logf("torture %s: %d rounds of %d processes x %d writers in %v, %d faults injected; %d batches attempted, %d acks, %d events stored (%d without an ack line), %d watchers saw %d events; errors by class %v; violations: %d",
		strings.SplitN(backend, ":", 2)[0], *rounds, *children, *writers, time.Since(start).Round(time.Millisecond), faults,
		len(in.Intents), len(in.Acks), len(in.All), unacked, len(in.Watches), seen, logs.Errors, len(violations))
	for class, msg := range logs.Samples {
		t.Logf("sample %s error: %s", class, msg)
	}
	for i, v := range violations {
		if i == 20 {
			t.Errorf("... and %d more", len(violations)-20)
			break
		}
		t.Errorf("violation: %v", v)
	}
	selfTest(t, in)
	if logs.Errors["refused"] != 0 {
		t.Errorf("valid appends were refused: %s", logs.Samples["refused"])
	}
	if len(in.Acks) == 0 || seen == 0 {
		t.Errorf("the run did nothing: %d acks, %d watched", len(in.Acks), seen)
	}
	for _, w := range in.Watches {
		if len(w.Seen) == 0 {
			t.Errorf("watcher %s of %q saw nothing", w.Name, w.Stream)
		}
	}
}

// runRounds runs the rounds of a torture test: start the children (in
// mode), let them run while killer (if any) runs, inject faults at three
// random moments, SIGKILL each child at a random moment, and repeat. It
// returns the number of faults injected.
func runRounds(t *testing.T, dir, backend, mode string, fault, killer func(context.Context)) int {
	faults := 0
	for r := range *rounds {
		type proc struct {
			cmd    *exec.Cmd
			stderr *bytes.Buffer
			err    error // set before the child's index is sent on exited
			killed bool
		}
		procs := make([]*proc, *children)
		exited := make(chan int, *children)
		ready := make(chan int, *children)
		for c := range *children {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(),
				envChild+"=c"+strconv.Itoa(c), envRun+"="+strconv.Itoa(r), envDir+"="+dir,
				envBackend+"="+backend, envWriters+"="+strconv.Itoa(*writers), envMode+"="+mode)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			// A pipe of our own (not StdoutPipe, which must be read to
			// the end before Wait): the child says when it is ready.
			rd, wr, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = wr
			err = cmd.Start()
			if cerr := wr.Close(); cerr != nil { // the child has its own copy
				t.Errorf("closing the parent's end of the pipe: %v", cerr)
			}
			if err != nil {
				_ = rd.Close() // the Start error is the one to report
				t.Fatal(err)
			}
			go func() {
				defer rd.Close()
				sc := bufio.NewScanner(rd)
				for sc.Scan() {
					if sc.Text() == readyLine {
						ready <- c
					}
				}
			}()
			p := &proc{cmd: cmd, stderr: &stderr}
			// A test that fails mid-round leaves no child behind (it
			// would hold the schema's locks when the schema is dropped).
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			go func() { p.err = cmd.Wait(); exited <- c }()
			procs[c] = p
		}
		// The round starts when every child's store is open: a loaded
		// machine (or -race) can take most of a round to start one, and
		// a round that kills children before they ran tests nothing.
		notReady := time.NewTimer(time.Minute)
		for n := 0; n < len(procs); {
			select {
			case <-ready:
				n++
			case c := <-exited:
				t.Fatalf("round %d: child %d exited before it was ready: %v\n%s", r, c, procs[c].err, procs[c].stderr)
			case <-notReady.C:
				t.Fatalf("round %d: %d of %d children not ready after a minute", r, len(procs)-n, len(procs))
			}
		}
		notReady.Stop()
		// Kill moments: each child at its own random time in the second
		// half of the round; faults at random times before.
		type event struct {
			at   time.Duration
			kill int // -1 = fault
		}
		var plan []event
		for c := range procs {
			plan = append(plan, event{at: *round/2 + rand.N(*round/2+1), kill: c})
		}
		if fault != nil {
			for range 3 {
				plan = append(plan, event{at: *round/5 + rand.N(*round*4/5), kill: -1})
			}
		}
		sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
		kctx, stopKiller := context.WithCancel(t.Context())
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			if killer != nil {
				killer(kctx)
			}
		}()
		began := time.Now()
		waited := 0
		for _, e := range plan {
			timer := time.NewTimer(time.Until(began.Add(e.at)))
		wait:
			for {
				select {
				case <-timer.C:
					break wait
				case c := <-exited:
					// A child that exits by itself failed: report it at once.
					if !procs[c].killed {
						timer.Stop()
						t.Fatalf("round %d: child %d exited before it was killed: %v\n%s", r, c, procs[c].err, procs[c].stderr)
					}
					checkKilled(t, r, c, procs[c].err, procs[c].stderr)
					waited++
				}
			}
			if e.kill < 0 {
				fault(t.Context())
				faults++
				continue
			}
			procs[e.kill].killed = true
			if err := procs[e.kill].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
		}
		for ; waited < len(procs); waited++ {
			c := <-exited
			checkKilled(t, r, c, procs[c].err, procs[c].stderr)
		}
		stopKiller()
		<-killed
	}

	return faults
}

func checkKilled(t *testing.T, round, child int, err error, stderr *bytes.Buffer) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d child %d: ended with %v, want killed by SIGKILL\n%s", round, child, err, stderr)
	}
}

// selfTest injects a loss, a duplicate and a watcher gap into the run's
// real data and checks that the checker reports each: a run whose checker
// went blind fails here instead of passing.
func selfTest(t *testing.T, in torture.Input) {
	t.Helper()
	if len(in.Acks) == 0 || len(in.All) < 3 {
		return
	}
	ack := in.Acks[len(in.Acks)/2]
	var lossAll []eventstore.Recorded
	for _, r := range in.All {
		if r.ID != ack.IDs[0] {
			lossAll = append(lossAll, r)
		}
	}
	dup := in.All[len(in.All)/2]
	dup.Position = in.All[len(in.All)-1].Position + 1
	var watchGap []torture.WatchLog
	for _, w := range in.Watches {
		if len(w.Seen) >= 3 {
			w.Seen = append(append([]torture.Seen(nil), w.Seen[:1]...), w.Seen[2:]...)
			watchGap = append(watchGap, w)
			break
		}
	}
	for _, c := range []struct {
		name string
		in   torture.Input
		want torture.Kind
	}{
		{"loss", torture.Input{All: lossAll, Intents: in.Intents, Acks: in.Acks}, torture.Loss},
		{"duplicate", torture.Input{All: append(append([]eventstore.Recorded(nil), in.All...), dup), Intents: in.Intents}, torture.Duplicate},
		{"watcher gap", torture.Input{All: in.All, Intents: in.Intents, Watches: watchGap}, torture.WatchGap},
	} {
		found := 0
		for _, v := range torture.Check(c.in) {
			if v.Kind == c.want {
				found++
			}
		}
		if found == 0 {
			t.Errorf("self-test: an injected %s in the run's data was not reported", c.name)
		} else {
			t.Logf("self-test: injected %s reported (%d %s violation(s))", c.name, found, c.want)
		}
	}
}
