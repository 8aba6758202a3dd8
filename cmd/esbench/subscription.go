package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// The subscription operations (package subscription, issue 10):
// sub_catchup, sub_tx, sub_live and, on PostgreSQL, sub_group. See doc.go.

// row is one row of the read model sub_tx's handlers write: an event's
// position, stream and version.
type row struct {
	pos     uint64
	stream  string
	version uint64
}

func toRows(dst []row, events []eventstore.Recorded) []row {
	for _, e := range events {
		dst = append(dst, row{e.Position, e.StreamID, e.Version})
	}
	return dst
}

// subStore makes the library's subscriptions on the run's store, whose
// type (and so the subscription's transaction type) depends on the
// backend.
type subStore interface {
	// newSub returns the at-least-once subscription name, calling h.
	newSub(name string, h subscription.Handler, opts ...subscription.Option) (*subscription.Subscription, error)
	// newTxSub returns the transactional subscription name, whose handler
	// writes one row per event into esbench_rows in the checkpoint's
	// transaction, with the code of the driver's txBatch.
	newTxSub(name string, opts ...subscription.Option) (*subscription.Subscription, error)
	// lowest returns the lowest stored checkpoint of subscription name, 0
	// if it is not registered yet.
	lowest(ctx context.Context, name string) (uint64, error)
}

// lowestPosition reads the stored partitions of name. It asks the backend
// directly: subscription.List would also read every other subscription
// and its parked events, at every poll of sub_group.
func lowestPosition[Tx any](ctx context.Context, s subscription.Store[Tx], name string) (uint64, error) {
	parts, err := s.Subscriptions().Partitions(ctx, name)
	if err != nil || len(parts) == 0 {
		return 0, err
	}
	low := parts[0].Position
	for _, p := range parts[1:] {
		low = min(low, p.Position)
	}
	return low, nil
}

// subTimeout bounds one subscription run of the benchmark: one that keeps
// failing (Run retries database errors forever) must not hang it.
const subTimeout = 30 * time.Minute

// runUntil runs sub until it has handled every event up to position last,
// then stops it and waits for Run to return.
func runUntil(ctx context.Context, sub *subscription.Subscription, last uint64) error {
	ctx, cancel := context.WithTimeout(ctx, subTimeout)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- sub.Run(ctx) }()
	waited := make(chan error, 1)
	go func() { waited <- sub.WaitFor(ctx, last) }()
	select {
	case err := <-ran:
		cancel()
		werr := <-waited
		if err == nil {
			err = fmt.Errorf("subscription %s stopped before position %d: %w (last error: %w)", sub.Name(), last, werr, sub.Status().Err)
		}
		return err
	case err := <-waited:
		cancel()
		if err != nil {
			err = fmt.Errorf("waiting for position %d: %w (last error: %w)", last, err, sub.Status().Err)
		}
		return errors.Join(err, <-ran)
	}
}

// subEventsOnce appends the events of sub_catchup and sub_tx, once per
// run: subEvents events in batches of cfg.batch, each batch a new
// stream. They are the store's last events, (subBefore, subLast].
func (b *bench) subEventsOnce(ctx context.Context) error {
	if b.subLast != 0 {
		return nil
	}
	cfg := b.cfg
	if err := b.env.drv.subSetup(ctx); err != nil {
		return fmt.Errorf("subscriptions: tables: %w", err)
	}
	cfg.logf("subscriptions: appending %d events", cfg.subEvents)
	info, err := b.env.store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return err
	}
	evs, _, err := counterEvents(min(cfg.batch, cfg.subEvents))
	if err != nil {
		return err
	}
	var last uint64
	for i, n := 0, 0; n < cfg.subEvents; i, n = i+1, n+len(evs) {
		k := min(len(evs), cfg.subEvents-n)
		res, err := b.env.store.Append(ctx, fmt.Sprintf("sub-%s-%d", b.id, i), eventstore.NoStream, evs[:k]...)
		if err != nil {
			return fmt.Errorf("subscriptions: append: %w", err)
		}
		last = res.Position
	}
	b.subBefore, b.subLast = info.Position, last
	return nil
}

// subCatchup (sub_catchup) catches up over the subEvents events with a
// checkpointing subscription (New, a handler that does nothing, batches
// of subBatch), in lockstep with the driver's plain read of the same
// events (one cursor, position order), subReps times. The handler calls
// pause between batches' events, outside any transaction.
func (b *bench) subCatchup(ctx context.Context) error {
	if err := b.subEventsOnce(ctx); err != nil {
		return err
	}
	cfg := b.cfg
	cfg.logf("sub_catchup: %d events, batches of %d, %d runs per side in lockstep", cfg.subEvents, cfg.subBatch, cfg.subReps)
	drvRead := func(pause func()) error {
		k := 0
		n, err := b.env.drv.readAll(ctx, b.subBefore, 0, func(uint64, string, uint64, []byte) error {
			if k++; b.cfg.turnEnds(k) {
				pause()
			}
			return nil
		})
		return countErr(n, cfg.subEvents, err)
	}
	// Untimed, as read_stream's: cold caches would cost whichever side
	// goes first.
	if err := drvRead(func() {}); err != nil {
		return fmt.Errorf("sub_catchup: warm-up: %w", err)
	}
	var st steps
	for i := range cfg.subReps {
		name := fmt.Sprintf("catchup-%s-%d", b.id, i)
		d, err := lockstep(i%2,
			func(pause func()) error {
				k := 0
				sub, err := b.env.subs.newSub(name, func(_ context.Context, events []eventstore.Recorded) error {
					for range events {
						if k++; b.cfg.turnEnds(k) {
							pause()
						}
					}
					return nil
				}, subscription.WithBatchSize(cfg.subBatch), subscription.WithStart(eventstore.After(b.subBefore)))
				if err != nil {
					return err
				}
				if err := runUntil(ctx, sub, b.subLast); err != nil {
					return err
				}
				return countErr(k, cfg.subEvents, nil)
			},
			drvRead,
		)
		if err != nil {
			return fmt.Errorf("sub_catchup: %w", err)
		}
		st.add(d)
	}
	lib, drv, med := st.rates(cfg.subEvents)
	r := b.result("sub_catchup", cfg.subEvents, lib, drv)
	r.RatioMedian = med
	r.Target, r.Met = atLeast(r.Ratio, 0.8)
	b.emit(r)
	return nil
}

// subTx (sub_tx) consumes the subEvents events with a transactional
// subscription (NewTx) whose handler inserts one row per event through
// its transaction, against a hand-written consumer on the bare driver
// doing the same in batches of the same size: read a batch, begin, insert
// the rows, update a checkpoint row, commit. Whole runs alternate, subReps
// per side (a paused transaction would hold SQLite's write lock, so no
// lockstep here).
func (b *bench) subTx(ctx context.Context) error {
	if err := b.subEventsOnce(ctx); err != nil {
		return err
	}
	cfg := b.cfg
	cfg.logf("sub_tx: %d events, batches of %d, %d runs per side", cfg.subEvents, cfg.subBatch, cfg.subReps)
	var libT, drvT time.Duration
	for i := range cfg.subReps {
		lib := func() error {
			sub, err := b.env.subs.newTxSub(fmt.Sprintf("tx-%s-lib-%d", b.id, i),
				subscription.WithBatchSize(cfg.subBatch), subscription.WithStart(eventstore.After(b.subBefore)))
			if err != nil {
				return err
			}
			t := time.Now()
			err = runUntil(ctx, sub, b.subLast)
			libT += time.Since(t)
			if err != nil {
				return err
			}
			return countErr(int(sub.Status().Delivered), cfg.subEvents, nil)
		}
		drv := func() error {
			t := time.Now()
			err := b.bareTx(ctx, fmt.Sprintf("tx-%s-drv-%d", b.id, i))
			drvT += time.Since(t)
			return err
		}
		if err := alternate(i, lib, drv); err != nil {
			return fmt.Errorf("sub_tx: %w", err)
		}
	}
	n := cfg.subEvents * cfg.subReps
	r := b.result("sub_tx", cfg.subEvents, perSecond(n, libT), perSecond(n, drvT))
	r.Target, r.Met = atLeast(r.Ratio, 0.8)
	b.emit(r)
	return nil
}

// bareTx is sub_tx's driver side.
func (b *bench) bareTx(ctx context.Context, name string) error {
	cfg := b.cfg
	rows := make([]row, 0, cfg.subBatch)
	after, total := b.subBefore, 0
	for after < b.subLast {
		rows = rows[:0]
		_, err := b.env.drv.readAll(ctx, after, cfg.subBatch, func(pos uint64, stream string, version uint64, _ []byte) error {
			rows = append(rows, row{pos, stream, version})
			return nil
		})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("no event past position %d, want up to %d", after, b.subLast)
		}
		after = rows[len(rows)-1].pos
		if err := b.env.drv.txBatch(ctx, name, rows, after); err != nil {
			return err
		}
		total += len(rows)
	}
	return countErr(total, cfg.subEvents, nil)
}

// liveStreams is how many streams sub_live's appends spread over.
const liveStreams = 100

// liveInFlight bounds sub_live's appends under way at once: past it the
// appender waits, and the pace slips (the rates show it).
const liveInFlight = 64

// subLive (sub_live) measures a live subscription's lag: the time from
// an append's return to the handler's receipt of its event, with
// liveAppends single-event appends per side at liveRate per second (open
// loop: each append starts at its time, in its own goroutine). Driver:
// the same appends, made by the library too (the bare driver's, one
// transaction each without group commit, do not keep up with 1,000 a
// second on either backend, and its latencies would be its queue's), and
// a bare consumer that reads the events past its position in batches of
// subBatch, woken by the appender itself (an ideal in-process notifier)
// or every second, and writes no checkpoint: the least a consumer can
// cost. Two rounds per side, alternating.
func (b *bench) subLive(ctx context.Context) error {
	cfg := b.cfg
	if err := b.env.drv.subSetup(ctx); err != nil {
		return fmt.Errorf("sub_live: tables: %w", err)
	}
	cfg.logf("sub_live: %d appends per side at %d/s", cfg.liveAppends, cfg.liveRate)
	var lib, drv []time.Duration
	var libT, drvT time.Duration
	for round := range 2 {
		n := cfg.liveAppends / 2
		if round == 1 {
			n = cfg.liveAppends - n
		}
		libRound := func() error {
			name := fmt.Sprintf("live-%s-lib-%d", b.id, round)
			lat, d, err := b.liveRound(ctx, n,
				func(ctx context.Context, head uint64, got func([]byte)) error {
					sub, err := b.env.subs.newSub(name, func(_ context.Context, events []eventstore.Recorded) error {
						for _, e := range events {
							got(e.Data)
						}
						return nil
					}, subscription.WithBatchSize(cfg.subBatch), subscription.WithStart(eventstore.After(head)))
					if err != nil {
						return err
					}
					return sub.Run(ctx)
				},
				func(ctx context.Context, k int, data []byte) error {
					_, err := b.env.store.Append(ctx, fmt.Sprintf("%s-%d", name, k%liveStreams), eventstore.Any, eventstore.Event{Type: "live", Data: data})
					return err
				})
			lib, libT = append(lib, lat...), libT+d
			return err
		}
		drvRound := func() error {
			name := fmt.Sprintf("live-%s-drv-%d", b.id, round)
			wake := newWakers(1)
			lat, d, err := b.liveRound(ctx, n,
				func(ctx context.Context, head uint64, got func([]byte)) error {
					return b.bareLive(ctx, head, wake, got)
				},
				func(ctx context.Context, k int, data []byte) error {
					_, err := b.env.store.Append(ctx, fmt.Sprintf("%s-%d", name, k%liveStreams), eventstore.Any, eventstore.Event{Type: "live", Data: data})
					if err == nil {
						wake.notify(0)
					}
					return err
				})
			drv, drvT = append(drv, lat...), drvT+d
			return err
		}
		if err := alternate(round, libRound, drvRound); err != nil {
			return fmt.Errorf("sub_live: %w", err)
		}
	}
	lp50, lp99 := percentiles(lib)
	dp50, dp99 := percentiles(drv)
	// Rates: deliveries per second of wall time, which the pace of the
	// appender sets; the latencies are the figures.
	r := b.result("sub_live", cfg.liveAppends, perSecond(len(lib), libT), perSecond(len(drv), drvT))
	r.Count = len(lib)
	setLatency(&r, lp50, lp99, dp50, dp99)
	want := 5.0
	if b.env.name == "postgres" {
		want = 20
	}
	r.Target, r.Met = fmt.Sprintf("p99_ms <= %g at %d appends/s", want, cfg.liveRate), *r.P99Ms <= want
	b.emit(r)
	return nil
}

// bareLive is sub_live's driver consumer.
func (b *bench) bareLive(ctx context.Context, after uint64, wake *wakers, got func([]byte)) error {
	for {
		changed := wake.changed(0)
		n, err := b.env.drv.readAll(ctx, after, b.cfg.subBatch, func(pos uint64, _ string, _ uint64, data []byte) error {
			got(data)
			after = pos
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return nil //nolint:nilerr // the run is over: the consumer's read ends with it
		case err != nil:
			return err
		case n == b.cfg.subBatch:
			continue
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// liveTimes are sub_live's clocks: when each append returned and when
// its event reached the consumer, in Unix nanoseconds (0: not yet). Event
// k's data is k, 8 bytes big-endian; event 0 is the warm-up.
type liveTimes struct {
	sent, recv []atomic.Int64
	left       atomic.Int64
	first, all chan struct{}
}

func newLiveTimes(n int) *liveTimes {
	lt := &liveTimes{sent: make([]atomic.Int64, n+1), recv: make([]atomic.Int64, n+1), first: make(chan struct{}), all: make(chan struct{})}
	lt.left.Store(int64(n))
	return lt
}

func (lt *liveTimes) got(data []byte) {
	if len(data) != 8 {
		return
	}
	k := binary.BigEndian.Uint64(data)
	if k >= uint64(len(lt.recv)) || !lt.recv[k].CompareAndSwap(0, time.Now().UnixNano()) {
		return // not this round's, or delivered again
	}
	switch {
	case k == 0:
		close(lt.first)
	case lt.left.Add(-1) == 0:
		close(lt.all)
	}
}

// liveRound runs one round of sub_live: it starts consume from the
// store's head, appends the warm-up event and waits for it, then appends
// n events at cfg.liveRate per second and waits for the consumer to have
// them all. It returns their latencies and the round's duration.
func (b *bench) liveRound(ctx context.Context, n int,
	consume func(ctx context.Context, head uint64, got func([]byte)) error,
	appendOne func(ctx context.Context, k int, data []byte) error,
) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	info, err := b.env.store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return nil, 0, err
	}
	lt := newLiveTimes(n)
	consumed := make(chan error, 1)
	go func() { consumed <- consume(ctx, info.Position, lt.got) }()
	defer func() {
		cancel()
		if err := <-consumed; err != nil && !errors.Is(err, context.Canceled) {
			b.cfg.logf("sub_live: consumer: %v", err)
		}
	}()
	wait := func(ch <-chan struct{}, what string) error {
		t := time.NewTimer(time.Minute)
		defer t.Stop()
		select {
		case <-ch:
			return nil
		case err := <-consumed:
			consumed <- err // for the deferred receive
			return fmt.Errorf("the consumer stopped waiting for %s: %w", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return errors.New("timed out waiting for " + what)
		}
	}
	data := func(k int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(k)) }
	if err := appendOne(ctx, 0, data(0)); err != nil {
		return nil, 0, err
	}
	if err := wait(lt.first, "the warm-up event"); err != nil {
		return nil, 0, err
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		appendEr error
	)
	sem := make(chan struct{}, liveInFlight)
	interval := time.Second / time.Duration(b.cfg.liveRate)
	start := time.Now()
	for k := 1; k <= n && ctx.Err() == nil; k++ {
		if d := time.Until(start.Add(time.Duration(k-1) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := appendOne(ctx, k, data(k)); err != nil {
				errOnce.Do(func() { appendEr = err; cancel() })
				return
			}
			lt.sent[k].Store(time.Now().UnixNano())
		})
	}
	wg.Wait()
	if appendEr != nil {
		return nil, 0, appendEr
	}
	if err := wait(lt.all, "every event"); err != nil {
		return nil, 0, err
	}
	elapsed := time.Since(start)
	lat := make([]time.Duration, 0, n)
	for k := 1; k <= n; k++ {
		lat = append(lat, max(time.Duration(lt.recv[k].Load()-lt.sent[k].Load()), 0))
	}
	return lat, elapsed, nil
}

// groupStreams is how many streams sub_group's backlog spreads over,
// round robin, so that every page holds events of every partition.
const groupStreams = 1000

// subGroup (sub_group, PostgreSQL only) consumes a backlog of groupEvents
// events with one member of a subscription of groupPartitions partitions,
// then with a group of groupMembers members, each a child process, the
// handler costing groupCost per batch; the figure is the group's speed-up.
func (b *bench) subGroup(ctx context.Context) error {
	pg, ok := b.env.drv.(*pgDriver)
	if !ok {
		return nil
	}
	cfg := b.cfg
	cfg.logf("sub_group: writing a backlog of %d events over %d streams", cfg.groupEvents, groupStreams)
	_, data, err := counterEvents(1)
	if err != nil {
		return err
	}
	before, last, err := pg.bulkLoad(ctx, "group-"+b.id+"-", groupStreams, cfg.groupEvents, typeAdded, data[0])
	if err != nil {
		return fmt.Errorf("sub_group: backlog: %w", err)
	}
	n, err := pg.readAll(ctx, before, 0, func(uint64, string, uint64, []byte) error { return nil }) // warm-up
	if err := countErr(n, cfg.groupEvents, err); err != nil {
		return fmt.Errorf("sub_group: warm-up: %w", err)
	}
	var took [2]time.Duration
	for i, members := range []int{1, cfg.groupMembers} {
		cfg.logf("sub_group: %d member(s), %d partitions, %v per batch of %d", members, cfg.groupPartitions, cfg.groupCost, cfg.groupBatch)
		d, delivered, err := b.runGroup(ctx, fmt.Sprintf("group-%s-%d", b.id, members), members, before, last)
		if err != nil {
			return fmt.Errorf("sub_group: %d members: %w", members, err)
		}
		cfg.logf("sub_group: %d member(s): %v, %d deliveries", members, d.Round(time.Millisecond), delivered)
		took[i] = d
	}
	r := b.result("sub_group", cfg.groupEvents, perSecond(cfg.groupEvents, took[1]), perSecond(cfg.groupEvents, took[0]))
	r.Count = cfg.groupMembers
	r.Target, r.Met = fmt.Sprintf("ratio (%d members / 1, library/s / driver/s) >= 2", cfg.groupMembers), r.Ratio >= 2
	b.emit(r)
	return nil
}

// The lines a sub-member child prints.
const (
	memberReady     = "esbench-ready"
	memberDelivered = "esbench-delivered "
)

// groupMember is a child process of runGroup.
type groupMember struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

// runGroup runs members child processes as the members of subscription
// name over the backlog (before, last]: each opens the store and says it
// is ready; then all start at once, and the time runs until the stored
// checkpoints all reach last (polled every 10ms). It returns that time
// and the events delivered in all.
func (b *bench) runGroup(ctx context.Context, name string, members int, before, last uint64) (time.Duration, int, error) {
	cfg := b.cfg
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, subTimeout)
	defer cancel()
	ms := make([]*groupMember, members)
	defer func() {
		for _, m := range ms {
			if m != nil && m.cmd.Process != nil && m.cmd.ProcessState == nil {
				_ = m.cmd.Process.Kill() // only on failure: the members end by themselves
				_ = m.cmd.Wait()
			}
		}
	}()
	for i := range ms {
		m := &groupMember{name: "member-" + strconv.Itoa(i), cmd: exec.CommandContext(ctx, exe)}
		m.cmd.Env = append(os.Environ(), b.env.childEnv...)
		m.cmd.Env = append(m.cmd.Env, childEnv+"=sub-member",
			"ESBENCH_SUB_NAME="+name, "ESBENCH_SUB_MEMBER="+m.name,
			"ESBENCH_SUB_PARTITIONS="+strconv.Itoa(cfg.groupPartitions), "ESBENCH_SUB_BATCH="+strconv.Itoa(cfg.groupBatch),
			"ESBENCH_SUB_AFTER="+strconv.FormatUint(before, 10), "ESBENCH_SUB_LAST="+strconv.FormatUint(last, 10),
			"ESBENCH_SUB_COST="+cfg.groupCost.String(), "ESBENCH_SUB_LEASE="+cfg.groupLease.String())
		m.cmd.Stderr = &m.stderr
		if m.stdin, err = m.cmd.StdinPipe(); err != nil {
			return 0, 0, err
		}
		out, err := m.cmd.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		m.stdout = bufio.NewReader(out)
		if err := m.cmd.Start(); err != nil {
			return 0, 0, err
		}
		ms[i] = m
	}
	memberErr := func(m *groupMember, err error) error {
		return fmt.Errorf("%s: %w: %s", m.name, err, strings.TrimSpace(m.stderr.String()))
	}
	for _, m := range ms {
		line, err := m.stdout.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != memberReady {
			return 0, 0, memberErr(m, fmt.Errorf("not ready (%q, %w)", line, err))
		}
	}
	start := time.Now()
	for _, m := range ms {
		if _, err := io.WriteString(m.stdin, "go\n"); err != nil {
			return 0, 0, memberErr(m, err)
		}
	}
	// Each member reports its deliveries and exits once the group is
	// done; one that exits early has failed.
	type exit struct {
		m         *groupMember
		delivered int
		err       error
	}
	exits := make(chan exit, members)
	for _, m := range ms {
		go func() {
			var delivered, batches int
			var first, done time.Duration
			out, err := io.ReadAll(m.stdout)
			for line := range strings.Lines(string(out)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), memberDelivered); ok {
					_, _ = fmt.Sscanf(v, "%d %d %d %d", &delivered, &batches, &first, &done)
					cfg.logf("sub_group: %s: %d events in %d batches, the first at %v, done at %v",
						m.name, delivered, batches, first.Round(time.Millisecond), done.Round(time.Millisecond))
				}
			}
			exits <- exit{m, delivered, errors.Join(err, m.cmd.Wait())}
		}()
	}
	var took time.Duration
	exited, delivered := 0, 0
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for took == 0 {
		low, err := b.env.subs.lowest(ctx, name)
		if err != nil {
			return 0, 0, err
		}
		if low >= last {
			took = time.Since(start)
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case e := <-exits:
			if e.err != nil {
				return 0, 0, memberErr(e.m, e.err)
			}
			exited, delivered = exited+1, delivered+e.delivered
		case <-tick.C:
		}
	}
	for ; exited < members; exited++ {
		e := <-exits
		if e.err != nil {
			return 0, 0, memberErr(e.m, e.err)
		}
		delivered += e.delivered
	}
	if delivered < cfg.groupEvents {
		return 0, 0, fmt.Errorf("the members delivered %d events, want at least %d", delivered, cfg.groupEvents)
	}
	return took, delivered, nil
}

// subMember is the child's side of runGroup: one member of the group,
// until every partition is handled up to ESBENCH_SUB_LAST.
func subMember(ctx context.Context) (err error) {
	env := func(k string) string { return os.Getenv("ESBENCH_SUB_" + k) }
	var (
		partitions, batch int
		after, last       uint64
		cost, lease       time.Duration
	)
	for _, p := range []struct {
		k     string
		parse func(string) error
	}{
		{"PARTITIONS", func(v string) (err error) { partitions, err = strconv.Atoi(v); return }},
		{"BATCH", func(v string) (err error) { batch, err = strconv.Atoi(v); return }},
		{"AFTER", func(v string) (err error) { after, err = strconv.ParseUint(v, 10, 64); return }},
		{"LAST", func(v string) (err error) { last, err = strconv.ParseUint(v, 10, 64); return }},
		{"COST", func(v string) (err error) { cost, err = time.ParseDuration(v); return }},
		{"LEASE", func(v string) (err error) { lease, err = time.ParseDuration(v); return }},
	} {
		if err := p.parse(env(p.k)); err != nil {
			return fmt.Errorf("ESBENCH_SUB_%s: %w", p.k, err)
		}
	}
	e, err := openChild(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.cleanup()) }()
	var delivered, batches, first atomic.Int64
	var start time.Time
	opts := []subscription.Option{
		subscription.WithMember(env("MEMBER")), subscription.WithPartitions(partitions),
		subscription.WithBatchSize(batch), subscription.WithStart(eventstore.After(after)),
	}
	if lease > 0 {
		opts = append(opts, subscription.WithLeaseTTL(lease))
	}
	sub, err := e.subs.newSub(env("NAME"), func(_ context.Context, events []eventstore.Recorded) error {
		delivered.Add(int64(len(events)))
		if batches.Add(1) == 1 {
			first.Store(int64(time.Since(start)))
		}
		time.Sleep(cost) // the handler's cost, as the issue sets it
		return nil
	}, opts...)
	if err != nil {
		return err
	}
	fmt.Println(memberReady)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	start = time.Now()
	if err := runUntil(ctx, sub, last); err != nil {
		return err
	}
	// Deliveries, batches, and when (since the start, in nanoseconds) the
	// first batch came and the group was seen done.
	fmt.Printf("%s%d %d %d %d\n", memberDelivered, delivered.Load(), batches.Load(), first.Load(), time.Since(start))
	return nil
}
