//go:build torture

package torture_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	"github.com/esv2/esv2/subscription"
)

var (
	subStreams   = flag.Int("torture.streams", 50, "streams of the subscription run")
	subConsumers = flag.Int("torture.consumers", 3, "consumer processes (members of one group) of the subscription run")
	subWriters   = flag.Int("torture.subwriters", 2, "writer processes of the subscription run (3 goroutines each)")
)

// Modes of the subscription run's children.
const (
	modeSubWriter = "subwriter"
	modeConsumer  = "consumer"
	envSchema     = "ESV2_TORTURE_SCHEMA" // the read model's schema, on PostgreSQL
)

// The subscriptions' settings in the run.
const (
	subPartitions = 8
	subLeaseTTL   = time.Second
	subBatch      = 25
	// drainTimeout bounds the wait, after the writers stopped, for every
	// subscription's lag to reach 0.
	drainTimeout = time.Minute
)

// consumerApp is the application_name of the consumers' connections:
// apart from the writers', so that only the consumers' are terminated.
func consumerApp(schema string) string { return appName(schema) + "_c" }

// readModelTable is the read model's table.
const readModelTable = "torture_readmodel"

// subChild runs a writer or a consumer of the subscription run.
func subChild(ctx context.Context, s eventstore.Store, name string, run int) error {
	seed, _ := strconv.ParseUint(name[1:], 10, 64)
	if os.Getenv(envMode) == modeSubWriter {
		return torture.RunSubWriter(ctx, s, torture.SubWriterConfig{
			Child: name, Run: run, Writers: 3, Streams: *subStreams, Pause: 20 * time.Millisecond, Seed: seed,
		})
	}
	cfg := torture.ConsumerConfig{
		Dir: os.Getenv(envDir), Member: name, Partitions: subPartitions, LeaseTTL: subLeaseTTL,
		BatchSize: subBatch, Work: 2 * time.Millisecond, Seed: seed,
	}
	switch st := s.(type) {
	case *sqlite.Store:
		return torture.RunConsumer(ctx, st, cfg, func(ctx context.Context, tx *sql.Tx, e eventstore.Recorded, amount int64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO `+readModelTable+` (stream, n, total, last_version) VALUES (?, 1, ?, ?)
				ON CONFLICT (stream) DO UPDATE SET n = n + 1, total = total + excluded.total, last_version = excluded.last_version`,
				e.StreamID, amount, int64(e.Version))
			return err
		})
	case *postgres.Store:
		table := pgx.Identifier{os.Getenv(envSchema), readModelTable}.Sanitize()
		return torture.RunConsumer(ctx, st, cfg, func(ctx context.Context, tx pgx.Tx, e eventstore.Recorded, amount int64) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` AS t (stream, n, total, last_version) VALUES ($1, 1, $2, $3)
				ON CONFLICT (stream) DO UPDATE SET n = t.n + 1, total = t.total + excluded.total, last_version = excluded.last_version`,
				e.StreamID, amount, int64(e.Version))
			return err
		})
	}
	return fmt.Errorf("no subscription backend in %T", s)
}

// TestTortureSubscriptions is the subscription run: writer processes
// append amounts to many streams while a group of consumer processes
// (one subscription group, several partitions, a short lease) keeps a
// transactional read model and an at-least-once delivery log; the parent
// SIGKILLs and restarts consumers, stops some for a while (a member
// leaves, then joins again) and, on PostgreSQL, terminates their server
// connections. At the end of each round the writers stop and the
// consumers run until every subscription's lag is 0. CheckSubs then
// compares the read model, the delivery logs and the lags with the store.
func TestTortureSubscriptions(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		ctx := t.Context()
		dir := t.TempDir()
		file := filepath.Join(dir, "events.db")
		s, err := sqlite.Open(ctx, file, sqlite.WithBusyTimeout(5*time.Second)) // creates the schema before the children race
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `CREATE TABLE `+readModelTable+` (stream TEXT PRIMARY KEY,
			n INTEGER NOT NULL, total INTEGER NOT NULL, last_version INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		readModel := func(ctx context.Context) (map[string]torture.ReadModelRow, error) {
			rows, err := db.QueryContext(ctx, `SELECT stream, n, total, last_version FROM `+readModelTable)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			out := map[string]torture.ReadModelRow{}
			for rows.Next() {
				var stream string
				var r torture.ReadModelRow
				if err := rows.Scan(&stream, &r.Count, &r.Sum, &r.Last); err != nil {
					return nil, err
				}
				out[stream] = r
			}
			return out, rows.Err()
		}
		runSubTorture(t, dir, "sqlite:"+file, nil, s, readModel, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := t.Context()
		schema := pgtest.FreshSchema(t, "torture_sub_")
		admin := migratedSchema(t, schema)
		if _, err := admin.Exec(ctx, `CREATE TABLE `+pgx.Identifier{schema, readModelTable}.Sanitize()+` (stream text PRIMARY KEY,
			n bigint NOT NULL, total bigint NOT NULL, last_version bigint NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		s, err := postgres.Open(ctx, pgtest.DSN(t), postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		readModel := func(ctx context.Context) (map[string]torture.ReadModelRow, error) {
			rows, err := admin.Query(ctx, `SELECT stream, n, total, last_version FROM `+pgx.Identifier{schema, readModelTable}.Sanitize())
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			out := map[string]torture.ReadModelRow{}
			for rows.Next() {
				var stream string
				var r torture.ReadModelRow
				if err := rows.Scan(&stream, &r.Count, &r.Sum, &r.Last); err != nil {
					return nil, err
				}
				out[stream] = r
			}
			return out, rows.Err()
		}
		// Terminate the consumers' connections every 10-50 ms: mostly
		// those running COMMIT (a checkpoint's, with the read model's
		// rows), else those running any statement, and now and then all
		// of them (the idle ones in the pool and the LISTEN connection).
		var tries, atCommit, all int
		terminate := func(ctx context.Context) int {
			n := 0
			for {
				timer := time.NewTimer(10*time.Millisecond + rand.N(40*time.Millisecond))
				select {
				case <-ctx.Done():
					timer.Stop()
					return n
				case <-timer.C:
				}
				query := terminateQuery
				switch r := rand.N(20); {
				case r == 0:
					all++
				case r < 15:
					query += ` AND state = 'active' AND query = 'COMMIT'`
				default:
					query += ` AND state = 'active'`
				}
				// Not cancelled with ctx: pgx closes a connection whose
				// query is cancelled, and the next round needs it.
				qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				var k int
				err := admin.QueryRow(qctx, query, consumerApp(schema)).Scan(&k)
				cancel()
				if err != nil {
					t.Errorf("pg_terminate_backend: %v", err)
					return n
				}
				tries++
				n += k
				if strings.Contains(query, "COMMIT") {
					atCommit += k
				}
			}
		}
		runSubTorture(t, t.TempDir(), "postgres:"+schema, []string{envSchema + "=" + schema}, s, readModel, terminate)
		t.Logf("terminations: %d asked (%d of every connection), %d connections ended while running COMMIT", tries, all, atCommit)
	})
}

// subProc is a child process of the subscription run.
type subProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{} // closed when it exited; err is then set
	err    error
	sent   syscall.Signal // the signal the parent sent it, 0 for none
}

func (p *subProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// subRun holds the state of one adapter's subscription run.
type subRun struct {
	t       *testing.T
	dir     string
	backend string
	env     []string
	round   int
	// Figures.
	started, kills, leaves, stops int
}

func (h *subRun) start(name, mode string) *subProc {
	h.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+name, envRun+"="+strconv.Itoa(h.round), envDir+"="+h.dir,
		envBackend+"="+h.backend, envMode+"="+mode)
	cmd.Env = append(cmd.Env, h.env...)
	p := &subProc{name: name, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.started++
	// A test that fails mid-round leaves no child behind (it would hold
	// the schema's locks when the schema is dropped).
	h.t.Cleanup(func() { _ = cmd.Process.Kill() })
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

// signal sends sig to p and waits for it to exit.
func (h *subRun) signal(p *subProc, sig syscall.Signal) {
	h.t.Helper()
	p.sent = sig
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		h.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		h.t.Errorf("round %d: %s did not exit within 30s of %v\n%s", h.round, p.name, sig, p.stderr)
		return
	}
	h.checkExit(p)
}

// checkExit reports a child that did not end as the parent asked: killed
// by SIGKILL, or exited with status 0 after SIGTERM. A consumer that ends
// by itself stopped (a subscription's Run returned an error).
func (h *subRun) checkExit(p *subProc) {
	h.t.Helper()
	var ee *exec.ExitError
	switch {
	case p.sent == syscall.SIGKILL && errors.As(p.err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
	case p.sent == syscall.SIGTERM && p.err == nil:
	case p.sent == syscall.SIGTERM && errors.As(p.err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM:
		// Signalled before it set up its handler (just started): it died
		// as if killed, which the run survives as well.
	default:
		h.stops++
		h.t.Errorf("round %d: %s ended with %v (signal sent: %v)\n%s", h.round, p.name, p.err, p.sent, p.stderr)
	}
}

// runSubTorture runs the rounds of the subscription run on one adapter,
// then checks it. s is the parent's own store (for List and the final
// read), readModel reads the read model, and terminate (PostgreSQL only)
// terminates consumers' connections until its context ends and returns
// how many.
func runSubTorture[Tx any](t *testing.T, dir, backend string, env []string, s subscription.Store[Tx],
	readModel func(context.Context) (map[string]torture.ReadModelRow, error), terminate func(context.Context) int) {
	ctx := t.Context()
	began := time.Now()
	h := &subRun{t: t, dir: dir, backend: backend, env: env}
	terminated := 0
	var drains []time.Duration
	for r := range *rounds {
		h.round = r
		members := make([]*subProc, *subConsumers)
		back := make([]time.Time, len(members)) // when a stopped member joins again
		for i := range members {
			members[i] = h.start("m"+strconv.Itoa(i), modeConsumer)
		}
		writers := make([]*subProc, *subWriters)
		for i := range writers {
			writers[i] = h.start("w"+strconv.Itoa(i), modeSubWriter)
		}
		tctx, stopTerminate := context.WithCancel(ctx)
		defer stopTerminate() // on an early return; stopped below otherwise
		termDone := make(chan int, 1)
		go func() {
			n := 0
			if terminate != nil {
				n = terminate(tctx)
			}
			termDone <- n
		}()
		end := time.Now().Add(*round)
		for {
			wait := min(100*time.Millisecond+rand.N(300*time.Millisecond), time.Until(end))
			if wait <= 0 {
				break
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			for i, p := range members {
				if p != nil && p.exited() {
					h.checkExit(p) // nothing was sent: it stopped by itself
					members[i] = nil
				}
				if members[i] == nil && !time.Now().Before(back[i]) {
					members[i] = h.start("m"+strconv.Itoa(i), modeConsumer)
				}
			}
			i := rand.N(len(members))
			p := members[i]
			if p == nil {
				continue
			}
			switch a := rand.N(10); {
			case a < 5: // killed: its leases run out, unless it is back first
				h.signal(p, syscall.SIGKILL)
				h.kills++
			case a < 8: // leaves: writes its checkpoints, releases its partitions
				h.signal(p, syscall.SIGTERM)
				h.leaves++
			default:
				continue
			}
			members[i] = nil
			back[i] = time.Now()
			if rand.N(2) == 0 { // away for a while: the others take its partitions
				back[i] = back[i].Add(300*time.Millisecond + rand.N(1200*time.Millisecond))
			}
		}
		stopTerminate()
		terminated += <-termDone
		for _, p := range writers {
			h.signal(p, syscall.SIGKILL)
		}
		for i, p := range members {
			if p != nil && p.exited() {
				h.checkExit(p)
				members[i] = nil
			}
			if members[i] == nil {
				members[i] = h.start("m"+strconv.Itoa(i), modeConsumer)
			}
		}
		// Drain: the consumers run until every subscription's lag is 0.
		drainStart := time.Now()
		deadline := drainStart.Add(drainTimeout)
		for {
			infos, err := subscription.List(ctx, s)
			if err != nil {
				t.Fatalf("round %d: List: %v", r, err)
			}
			if caughtUp(infos) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("round %d: subscriptions not caught up %v after the writers stopped: %+v", r, drainTimeout, infos)
				break
			}
			for i, p := range members {
				if p.exited() {
					h.checkExit(p)
					members[i] = h.start("m"+strconv.Itoa(i), modeConsumer)
				}
			}
			timer := time.NewTimer(50 * time.Millisecond) // polling the stored checkpoints, with the deadline above
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		drains = append(drains, time.Since(drainStart))
		for _, p := range members {
			h.signal(p, syscall.SIGTERM)
		}
	}

	// Check.
	infos, err := subscription.List(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := readModel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := torture.ReadDeliveries(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := torture.SubInput{All: all, ReadModel: rm, Logs: logs, Subs: infos}
	violations := torture.CheckSubs(in, torture.ReadModelSub, torture.LogSub)
	deliveries, batches := 0, 0
	times := map[uint64]int{}
	for _, l := range logs {
		batches += len(l.Batches)
		for _, b := range l.Batches {
			deliveries += len(b.Events)
			for _, d := range b.Events {
				times[d.Position]++
			}
		}
	}
	redelivered := 0
	for _, n := range times {
		if n > 1 {
			redelivered++
		}
	}
	t.Logf("torture subscriptions %s: %d rounds of %v in %v; %d events in %d streams; log subscription: %d deliveries in %d batches, %d events delivered more than once (%d extra deliveries); consumer processes started %d, SIGKILLed %d, stopped (left) %d, stopped by themselves %d; connections terminated %d; drains %v; violations: %d",
		strings.SplitN(backend, ":", 2)[0], *rounds, *round, time.Since(began).Round(time.Millisecond), len(all), len(rm),
		deliveries, batches, redelivered, deliveries-len(times), h.started-*subWriters**rounds, h.kills, h.leaves, h.stops, terminated, roundAll(drains), len(violations))
	for i, v := range violations {
		if i == 30 {
			t.Errorf("... and %d more", len(violations)-30)
			break
		}
		t.Errorf("violation: %v", v)
	}
	if len(all) == 0 || deliveries == 0 || h.kills == 0 || h.leaves == 0 {
		t.Errorf("the run did too little: %d events, %d deliveries, %d kills, %d leaves", len(all), deliveries, h.kills, h.leaves)
	}
	if terminate != nil && terminated == 0 {
		t.Errorf("no consumer connection was terminated: the fault was not exercised")
	}
	selfTestSubs(t, in)
}

func caughtUp(infos []subscription.Info) bool {
	n := 0
	for _, in := range infos {
		if in.Name != torture.ReadModelSub && in.Name != torture.LogSub {
			continue
		}
		if in.Lag != 0 {
			return false
		}
		n++
	}
	return n == 2
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// selfTestSubs injects a skipped delivery, a double-applied event, an
// overlap and a gap into the run's real data and checks that CheckSubs
// reports each, on top of what it reported for the data as stored.
func selfTestSubs(t *testing.T, in torture.SubInput) {
	t.Helper()
	count := func(in torture.SubInput, k torture.Kind) int {
		n := 0
		for _, v := range torture.CheckSubs(in, torture.ReadModelSub, torture.LogSub) {
			if v.Kind == k {
				n++
			}
		}
		return n
	}
	cloneLogs := func() []torture.DeliveryLog {
		out := make([]torture.DeliveryLog, len(in.Logs))
		for i, l := range in.Logs {
			out[i] = torture.DeliveryLog{Name: l.Name, Batches: make([]torture.DeliveryBatch, len(l.Batches))}
			for j, b := range l.Batches {
				b.Events = slices.Clone(b.Events)
				out[i].Batches[j] = b
			}
		}
		return out
	}
	times := map[uint64]int{}
	var first *torture.DeliveryBatch
	for _, l := range in.Logs {
		for i, b := range l.Batches {
			for _, d := range b.Events {
				times[d.Position]++
			}
			if first == nil || b.Start < first.Start {
				first = &l.Batches[i]
			}
		}
	}
	if first == nil || len(in.All) == 0 {
		t.Errorf("self-test: no delivery to inject into")
		return
	}
	for _, c := range []struct {
		name   string
		want   torture.Kind
		inject func() (torture.SubInput, bool)
	}{
		{"skipped delivery", torture.Undelivered, func() (torture.SubInput, bool) {
			out := in
			out.Logs = cloneLogs()
			for _, l := range out.Logs {
				for j := range l.Batches {
					b := &l.Batches[j]
					for k, d := range b.Events {
						if times[d.Position] == 1 {
							b.Events = slices.Delete(b.Events, k, k+1)
							return out, true
						}
					}
				}
			}
			return out, false
		}},
		{"double-applied event", torture.ReadModelWrong, func() (torture.SubInput, bool) {
			out := in
			out.ReadModel = map[string]torture.ReadModelRow{}
			for k, v := range in.ReadModel {
				out.ReadModel[k] = v
			}
			s := in.All[len(in.All)/2].StreamID
			row := out.ReadModel[s]
			row.Count++
			out.ReadModel[s] = row
			return out, true
		}},
		{"overlap", torture.Overlap, func() (torture.SubInput, bool) {
			// Another member handles a batch's events during it.
			out := in
			out.Logs = append(cloneLogs(), torture.DeliveryLog{Name: "injected", Batches: []torture.DeliveryBatch{
				{Member: "intruder", Start: first.Start, End: first.End, Events: slices.Clone(first.Events)},
			}})
			return out, true
		}},
		{"gap", torture.DeliveryGap, func() (torture.SubInput, bool) {
			// A batch before every other delivers a stream's version 2
			// (stored) before anything delivered its version 1.
			for _, r := range in.All {
				if r.Version == 2 {
					out := in
					out.Logs = append(cloneLogs(), torture.DeliveryLog{Name: "injected", Batches: []torture.DeliveryBatch{
						{Member: "early", Start: first.Start - 1000, End: first.Start - 999,
							Events: []torture.Delivered{{Stream: r.StreamID, Version: r.Version, Position: r.Position}}},
					}})
					return out, true
				}
			}
			return in, false
		}},
	} {
		injected, ok := c.inject()
		if !ok {
			t.Errorf("self-test %s: nothing in the run's data to inject it into", c.name)
			continue
		}
		if got, base := count(injected, c.want), count(in, c.want); got <= base {
			t.Errorf("self-test: an injected %s in the run's data was not reported: %d %s violations, %d before", c.name, got, c.want, base)
		} else {
			t.Logf("self-test: injected %s reported (%s)", c.name, c.want)
		}
	}
}
