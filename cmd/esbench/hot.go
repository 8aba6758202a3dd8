package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// hotSnapEvery is the snapshot interval of update_hot's aggregates: a hot
// aggregate is one a user snapshots, and without snapshots each Update's
// load would replay the stream, a cost that grows with the run and is not
// what the op measures.
const hotSnapEvery = 100

// updateHot (update_hot, issue 13 item 3) runs cfg.hotWriters goroutines
// of cfg.hotPer Repository.Update calls each on one aggregate, with the
// default attempts; the driver side is one goroutine running as many
// Updates, uncontended, on an aggregate of its own. The ratio is the
// goroutines' rate over the lone one's. An Update that gives up (a
// conflict after its last attempt) is counted, not fatal.
//
// On PostgreSQL, update_hot/2proc does the same from 2 processes of
// cfg.hotWriters/2 goroutines each, on one aggregate: there conflicts come
// from the other process, which no in-process queue can prevent.
func (b *bench) updateHot(ctx context.Context) error {
	cfg := b.cfg
	total := cfg.hotWriters * cfg.hotPer
	cfg.logf("update_hot: %d goroutines × %d Updates on one aggregate; %d Updates by one goroutine", cfg.hotWriters, cfg.hotPer, total)
	repo, err := newCounterRepo(b.env.store, hotSnapEvery, nil)
	if err != nil {
		return err
	}
	hot, single := "hot-"+b.id, "hot-"+b.id+"-single"
	var hotT, singleT time.Duration
	var hotLat, singleLat []time.Duration
	var gaveUp, singleGaveUp atomic.Int64
	for round := range 2 {
		per := cfg.hotPer / 2
		if round == 1 {
			per = cfg.hotPer - per
		}
		lib := func() error {
			d, lat, err := concurrently(ctx, cfg.hotWriters, per, func(int) error {
				return hotUpdate(ctx, repo, hot, &gaveUp)
			})
			hotT += d
			hotLat = append(hotLat, lat...)
			return err
		}
		drv := func() error {
			d, lat, err := concurrently(ctx, 1, per*cfg.hotWriters, func(int) error {
				return hotUpdate(ctx, repo, single, &singleGaveUp)
			})
			singleT += d
			singleLat = append(singleLat, lat...)
			return err
		}
		if err := alternate(round, lib, drv); err != nil {
			return fmt.Errorf("update_hot: %w", err)
		}
	}
	if err := checkCount(ctx, repo, hot, int64(total)-gaveUp.Load()); err != nil {
		return fmt.Errorf("update_hot: %w", err)
	}
	if n := singleGaveUp.Load(); n > 0 {
		return fmt.Errorf("update_hot: %d Updates of the lone goroutine gave up: another writer on its aggregate?", n)
	}
	r := b.result("update_hot", total, perSecond(total, hotT), perSecond(total, singleT))
	r.Count = total
	n := int(gaveUp.Load())
	r.GiveUps = &n
	lp50, lp99 := percentiles(hotLat)
	dp50, dp99 := percentiles(singleLat)
	setLatency(&r, lp50, lp99, dp50, dp99)
	r.Target = "ratio >= 0.5 and 0 give-ups"
	r.Met = r.Ratio >= 0.5 && n == 0
	cfg.logf("update_hot: %d of %d Updates gave up", n, total)
	b.emit(r)
	if b.env.name != "postgres" {
		return nil
	}
	return b.updateHotProcs(ctx, r.DriverPerS)
}

// hotUpdate adds 1 to the counter id, counting a give-up in gaveUp.
func hotUpdate(ctx context.Context, repo *aggregate.Repository[Counter, CounterEvent], id string, gaveUp *atomic.Int64) error {
	_, err := repo.Update(ctx, id, func(Counter) ([]CounterEvent, error) {
		return []CounterEvent{Added{By: 1, Ref: "hot"}}, nil
	})
	if errors.Is(err, eventstore.ErrConcurrency) {
		gaveUp.Add(1)
		return nil
	}
	return err
}

// checkCount checks that the counter id stands at want.
func checkCount(ctx context.Context, repo *aggregate.Repository[Counter, CounterEvent], id string, want int64) error {
	a, err := repo.Load(ctx, id)
	if err != nil {
		return err
	}
	if a.State().N != want || a.Version() != uint64(want) {
		return fmt.Errorf("counter %s: N=%d at version %d after %d successful Updates", id, a.State().N, a.Version(), want)
	}
	return nil
}

const hotResult = "esbench-hot "

// updateHotProcs is update_hot/2proc: 2 child processes (hotMember) of
// cfg.hotWriters/2 goroutines each, cfg.hotPer Updates per goroutine, on
// one aggregate. The time runs from the start signal until both report;
// the driver side is update_hot's lone goroutine (singleRate).
func (b *bench) updateHotProcs(ctx context.Context, singleRate float64) error {
	cfg := b.cfg
	const procs = 2
	per := max(cfg.hotWriters/procs, 1)
	total := procs * per * cfg.hotPer
	id := "hot-" + b.id + "-procs"
	cfg.logf("update_hot/2proc: %d processes × %d goroutines × %d Updates on one aggregate", procs, per, cfg.hotPer)
	outs, took, err := b.runStarted(ctx, procs, "update-hot", "ESBENCH_HOT_ID="+id,
		"ESBENCH_HOT_WRITERS="+strconv.Itoa(per), "ESBENCH_HOT_PER="+strconv.Itoa(cfg.hotPer))
	if err != nil {
		return fmt.Errorf("update_hot/2proc: %w", err)
	}
	gaveUp := 0
	var lats []time.Duration
	for _, out := range outs {
		v, ok := strings.CutPrefix(strings.TrimSpace(out), hotResult)
		fields := strings.Fields(v)
		if !ok || len(fields) < 1 {
			return fmt.Errorf("update_hot/2proc: no result in %q", out)
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil {
			return fmt.Errorf("update_hot/2proc: %w", err)
		}
		gaveUp += n
		for _, f := range fields[1:] {
			d, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return fmt.Errorf("update_hot/2proc: %w", err)
			}
			lats = append(lats, time.Duration(d))
		}
	}
	repo, err := newCounterRepo(b.env.store, hotSnapEvery, nil)
	if err != nil {
		return err
	}
	if err := checkCount(ctx, repo, id, int64(total-gaveUp)); err != nil {
		return fmt.Errorf("update_hot/2proc: %w", err)
	}
	r := b.result("update_hot/2proc", total, perSecond(total, took), singleRate)
	r.Count = total
	r.GiveUps = &gaveUp
	p50, p99 := percentiles(lats)
	setLatency(&r, p50, p99, 0, 0)
	r.DriverP50Ms, r.DriverP99Ms = nil, nil // the lone goroutine's are update_hot's
	r.Target, r.Met = "0 give-ups", gaveUp == 0
	cfg.logf("update_hot/2proc: %d of %d Updates gave up", gaveUp, total)
	b.emit(r)
	return nil
}

// hotMember is a child of update_hot/2proc: ESBENCH_HOT_WRITERS goroutines
// of ESBENCH_HOT_PER Updates each on the counter ESBENCH_HOT_ID, started
// by a line on stdin. It prints the give-ups and every Update's latency
// in nanoseconds.
func hotMember(ctx context.Context) (err error) {
	writers, err := strconv.Atoi(os.Getenv("ESBENCH_HOT_WRITERS"))
	if err != nil {
		return fmt.Errorf("ESBENCH_HOT_WRITERS: %w", err)
	}
	per, err := strconv.Atoi(os.Getenv("ESBENCH_HOT_PER"))
	if err != nil {
		return fmt.Errorf("ESBENCH_HOT_PER: %w", err)
	}
	id := os.Getenv("ESBENCH_HOT_ID")
	e, err := openChild(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.cleanup()) }()
	repo, err := newCounterRepo(e.store, hotSnapEvery, nil)
	if err != nil {
		return err
	}
	// A first load, so that both children have a connection open and the
	// code warm when the start comes.
	if _, err := repo.Load(ctx, id); err != nil {
		return err
	}
	if err := waitStart(); err != nil {
		return err
	}
	var gaveUp atomic.Int64
	_, lats, err := concurrently(ctx, writers, per, func(int) error {
		return hotUpdate(ctx, repo, id, &gaveUp)
	})
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d", hotResult, gaveUp.Load())
	for _, d := range lats {
		fmt.Fprintf(&b, " %d", int64(d))
	}
	fmt.Println(b.String())
	return nil
}

// runStarted runs n child processes of esbench doing op (childMain), with
// the run's store and env added to their environment. Each prints
// memberReady once set up; then all are told to start at once, and it
// returns what each printed after that, and the time from the start until
// the last one exited.
func (b *bench) runStarted(ctx context.Context, n int, op string, env ...string) ([]string, time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, subTimeout)
	defer cancel()
	type proc struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout *bufio.Reader
		stderr bytes.Buffer
	}
	ps := make([]*proc, n)
	defer func() {
		for _, p := range ps {
			if p != nil && p.cmd.Process != nil && p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill() // only on failure: the children end by themselves
				_ = p.cmd.Wait()
			}
		}
	}()
	for i := range ps {
		p := &proc{cmd: exec.CommandContext(ctx, exe)}
		p.cmd.Env = append(os.Environ(), b.env.childEnv...)
		p.cmd.Env = append(p.cmd.Env, childEnv+"="+op)
		p.cmd.Env = append(p.cmd.Env, env...)
		p.cmd.Stderr = &p.stderr
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			return nil, 0, err
		}
		out, err := p.cmd.StdoutPipe()
		if err != nil {
			return nil, 0, err
		}
		p.stdout = bufio.NewReader(out)
		if err := p.cmd.Start(); err != nil {
			return nil, 0, err
		}
		ps[i] = p
	}
	procErr := func(p *proc, err error) error {
		return fmt.Errorf("child %s: %w: %s", op, err, strings.TrimSpace(p.stderr.String()))
	}
	for _, p := range ps {
		if line, err := p.stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != memberReady {
			return nil, 0, procErr(p, fmt.Errorf("not ready (%q, %w)", line, err))
		}
	}
	start := time.Now()
	for _, p := range ps {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			return nil, 0, procErr(p, err)
		}
	}
	outs := make([]string, n)
	for i, p := range ps {
		out, err := io.ReadAll(p.stdout)
		if err == nil {
			err = p.cmd.Wait()
		}
		if err != nil {
			return nil, 0, procErr(p, err)
		}
		outs[i] = string(out)
	}
	return outs, time.Since(start), nil
}

// waitStart tells the parent of a runStarted child that it is ready, and
// waits for the start.
func waitStart() error {
	fmt.Println(memberReady)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	return nil
}
