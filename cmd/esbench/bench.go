package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// config is what one run measures.
type config struct {
	backend string
	dsn     string
	path    string
	events  int
	quiet   bool
	only    string // comma-separated operations; empty means all
	chunk   int    // lockstep: events per turn; 0 runs each side whole

	batch        int           // append_batch: events per Append
	writers      int           // append_concurrent: goroutines
	perWriter    int           // append_concurrent: appends per goroutine, per side
	watchers     int           // watch_latency: watchers
	watchStreams int           // watch_latency: streams watched
	watchPer     int           // watch_latency: appends per stream, per side
	watchEvery   time.Duration // watch_latency: pace of the appender
	fanWatchers  int           // watch_fanout: watchers
	fanRounds    int           // watch_fanout: rounds (an append to each stream)
	snapLoads    int           // load_snapshot: loads per side
	snapEvery    uint64        // load_snapshot: SnapshotEvery
	snapTail     int           // load_snapshot: events after the snapshot
	readReps     int           // read_stream: reads per side
	loadReps     int           // load_aggregate: loads per side
	childRSS     bool          // measure read/load peak RSS in child processes
	largeEvents  int           // read_large, watch_large: events in the large stream
	largeSize    int           // read_large, watch_large: bytes of each event's Data

	subEvents       int           // sub_catchup, sub_tx: events consumed
	subBatch        int           // sub_*: the subscriptions' batch size
	subReps         int           // sub_catchup, sub_tx: runs per side
	liveAppends     int           // sub_live: appends per side
	liveRate        int           // sub_live: appends per second
	groupEvents     int           // sub_group: the backlog
	groupMembers    int           // sub_group: members of the group
	groupPartitions int           // sub_group: the subscription's partitions
	groupBatch      int           // sub_group: the members' batch size
	groupCost       time.Duration // sub_group: the handler's cost per batch
	groupLease      time.Duration // sub_group: lease TTL; 0 for the library's default
	hotWriters      int           // update_hot: goroutines on the one aggregate
	hotPer          int           // update_hot: Updates per goroutine
	mpPer           int           // append_multiprocess: appends per goroutine

	progress io.Writer // nil: quiet
}

func defaultConfig() config {
	return config{
		backend: "sqlite", events: 1_000_000,
		batch: 1000, writers: 64, watchers: 1000, watchStreams: 100,
		watchEvery: 5 * time.Millisecond, fanWatchers: 10_000, fanRounds: 10, snapLoads: 200, snapEvery: 1000, snapTail: 100,
		readReps: 4, loadReps: 4, childRSS: true, chunk: 4096,
		largeEvents: defaultLargeEvents, largeSize: defaultLargeSize,
		subEvents: 100_000, subBatch: subscription.DefaultBatchSize, subReps: 2,
		liveAppends: 4000, liveRate: 1000,
		groupEvents: 1_000_000, groupMembers: 3, groupPartitions: 12, groupBatch: 20, groupCost: time.Millisecond,
		hotWriters: 64, hotPer: 20, mpPer: 300,
	}
}

func (c *config) check() error {
	switch c.backend {
	case "sqlite":
	case "postgres":
		if c.dsn == "" {
			return errors.New("-backend postgres needs -dsn (or ESV2_POSTGRES_DSN)")
		}
	default:
		return fmt.Errorf("-backend %q: want sqlite or postgres", c.backend)
	}
	if c.largeEvents < 1 || c.largeSize < 1 || c.largeSize > eventstore.DefaultMaxEventSize {
		return fmt.Errorf("-large-events %d -large-size %d: want at least one event of 1 to %d bytes", c.largeEvents, c.largeSize, eventstore.DefaultMaxEventSize)
	}
	if c.chunk < 0 {
		return fmt.Errorf("-lockstep-chunk %d: want 0 (each side whole) or more", c.chunk)
	}
	switch {
	case c.subEvents < 1 || c.liveAppends < 2 || c.groupEvents < 1:
		return fmt.Errorf("-sub-events %d -sub-live %d -group-events %d: want at least 1, 2 and 1", c.subEvents, c.liveAppends, c.groupEvents)
	case c.subBatch < 1 || c.subBatch > subscription.MaxBatchSize:
		return fmt.Errorf("-sub-batch %d: want 1 to %d", c.subBatch, subscription.MaxBatchSize)
	case c.liveRate < 1 || c.liveRate > int(time.Second):
		return fmt.Errorf("-sub-rate %d: want at least 1", c.liveRate)
	case c.groupMembers < 1 || c.groupPartitions < 1 || c.groupPartitions > subscription.MaxPartitions:
		return fmt.Errorf("-group-members %d -group-partitions %d: want at least 1 member, 1 to %d partitions", c.groupMembers, c.groupPartitions, subscription.MaxPartitions)
	case c.groupBatch < 1 || c.groupBatch > subscription.MaxBatchSize:
		return fmt.Errorf("-group-batch %d: want 1 to %d", c.groupBatch, subscription.MaxBatchSize)
	case c.groupCost < 0 || c.groupLease < 0:
		return fmt.Errorf("-group-cost %v -group-lease %v: want durations of at least 0", c.groupCost, c.groupLease)
	}
	if c.mpPer < 1 {
		return fmt.Errorf("-mp-per %d: want at least 1", c.mpPer)
	}
	if c.hotWriters < 1 || c.hotPer < 1 {
		return fmt.Errorf("-hot-writers %d -hot-per %d: want at least 1", c.hotWriters, c.hotPer)
	}
	if c.fanWatchers < 1 || c.fanRounds < 1 {
		return fmt.Errorf("-fanout-watchers %d -fanout-rounds %d: want at least 1", c.fanWatchers, c.fanRounds)
	}
	if c.events < c.batch {
		return fmt.Errorf("-events %d: want at least %d", c.events, c.batch)
	}
	// The count of concurrent appends scales with -events so that a smoke
	// run stays short: 64 × 32 per side at 200,000 events.
	if c.perWriter == 0 {
		c.perWriter = min(max(c.events/6250, 4), 64)
	}
	if c.watchPer == 0 {
		// 2 rounds × 100 streams × 2 appends × 10 watchers: 4,000
		// deliveries per side, enough for a p99, few enough that a slow
		// side still ends in seconds.
		c.watchPer = 2
	}
	return nil
}

// Result is one line of the report.
type Result struct {
	Backend     string  `json:"backend"`
	Op          string  `json:"op"`
	Events      int     `json:"events"`
	LibraryPerS float64 `json:"library_per_s"`
	DriverPerS  float64 `json:"driver_per_s"`
	// Ratio is LibraryPerS / DriverPerS.
	Ratio float64 `json:"ratio"`
	// RatioMedian (read_stream, load_aggregate) compares the sides'
	// median 4,096-event chunks instead of their total times.
	RatioMedian *float64 `json:"ratio_median,omitempty"`
	// Latencies, for the operations timed one by one.
	P50Ms       *float64 `json:"p50_ms,omitempty"`
	P99Ms       *float64 `json:"p99_ms,omitempty"`
	DriverP50Ms *float64 `json:"driver_p50_ms,omitempty"`
	DriverP99Ms *float64 `json:"driver_p99_ms,omitempty"`
	// ReplayRatio (load_snapshot) is the snapshot load's median latency
	// over the full replay's time.
	ReplayRatio *float64 `json:"replay_ratio,omitempty"`
	// GiveUps (update_hot) is how many Updates gave up after their
	// last attempt.
	GiveUps *int `json:"give_ups,omitempty"`
	// Count is how many operations were timed (appends, loads,
	// deliveries to watchers).
	Count int `json:"count,omitempty"`
	// PeakRSSMB is ru_maxrss in MiB, of what RSSScope says.
	PeakRSSMB       float64  `json:"peak_rss_mb"`
	DriverPeakRSSMB *float64 `json:"driver_peak_rss_mb,omitempty"`
	// BaselineRSSMB (read_large, watch_large) is the child's peak before
	// its operation began, with the store open.
	BaselineRSSMB *float64 `json:"baseline_rss_mb,omitempty"`
	RSSScope      string   `json:"rss_scope"`
	// Target is the target for this operation and backend; Met
	// whether this run meets it.
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

// driver is the bare-driver side of a backend: hand-written SQL doing the
// work of the library, on the library's own tables.
type driver interface {
	// appendBatch appends events with data to stream, whose version is
	// version, in one transaction.
	appendBatch(ctx context.Context, stream string, version uint64, typ string, data [][]byte) error
	// appendOne appends one event to stream in its own transaction; it is
	// safe for concurrent use.
	appendOne(ctx context.Context, stream string, typ string, data []byte) error
	// read scans the events of stream from version from on, in order,
	// into plain values, and calls fn with each; it returns the count.
	read(ctx context.Context, stream string, from uint64, fn func(version uint64, typ string, data []byte) error) (int, error)
	// snapshot reads the snapshot row of (stream, name).
	snapshot(ctx context.Context, stream, name string) (version uint64, schema string, data []byte, err error)
	// readAll scans the events past position after, in position order,
	// up to limit (0: all of them), into plain values, and calls fn with
	// each; it returns the count.
	readAll(ctx context.Context, after uint64, limit int, fn func(pos uint64, stream string, version uint64, data []byte) error) (int, error)
	// subSetup creates the tables of the subscription operations
	// (esbench_rows, esbench_checkpoints), unless they exist.
	subSetup(ctx context.Context) error
	// txBatch writes rows into esbench_rows under name and name's
	// checkpoint in one transaction.
	txBatch(ctx context.Context, name string, rows []row, checkpoint uint64) error
	// checkpoint writes name's checkpoint in a transaction of its own.
	checkpoint(ctx context.Context, name string, pos uint64) error
	close() error
}

// env is a backend opened for a run.
type env struct {
	name     string
	store    eventstore.Store
	drv      driver
	subs     subStore
	childEnv []string // how a child process opens the same store
	cleanup  func() error
}

func (c *config) logf(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, "esbench: "+format+"\n", args...)
	}
}

// run measures every operation and hands each result to emit as soon as
// it is known.
func run(ctx context.Context, cfg config, emit func(Result)) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	var e *env
	switch cfg.backend {
	case "sqlite":
		e, err = openSQLite(ctx, &cfg)
	case "postgres":
		e, err = openPostgres(ctx, &cfg)
	}
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.cleanup()) }()
	b := &bench{cfg: &cfg, env: e, id: runID(), emit: emit}
	for _, step := range []struct {
		op  string
		run func(context.Context) error
	}{
		{"append_batch", b.appendBatch}, {"read_stream", b.readStream}, {"load_aggregate", b.loadAggregate},
		{"load_snapshot", b.loadSnapshot}, {"append_concurrent", b.appendConcurrent}, {"append_multiprocess", b.appendMultiprocess}, {"watch_latency", b.watchLatency},
		{"watch_fanout", b.watchFanout}, {"update_hot", b.updateHot}, {"read_category", b.readCategory},
		{"read_large", b.readLarge}, {"watch_large", b.watchLarge},
		{"sub_catchup", b.subCatchup}, {"sub_tx", b.subTx}, {"sub_live", b.subLive}, {"sub_group", b.subGroup},
	} {
		if !cfg.selected(step.op) {
			continue
		}
		if err := step.run(ctx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// selected reports whether op is to run. The reads and loads need the
// stream append_batch writes, and load_snapshot the full replay's time.
// "subscription" selects the sub_ operations.
func (c *config) selected(op string) bool {
	if c.only == "" {
		return true
	}
	ops := strings.Split(c.only, ",")
	if strings.HasPrefix(op, "sub_") && slices.Contains(ops, "subscription") {
		return true
	}
	needs := map[string][]string{
		"append_batch":   {"read_stream", "load_aggregate", "load_snapshot"},
		"load_aggregate": {"load_snapshot"},
	}
	return slices.Contains(ops, op) || slices.ContainsFunc(needs[op], func(o string) bool { return slices.Contains(ops, o) })
}

func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// bench holds the state shared by the operations of one run.
type bench struct {
	cfg  *config
	env  *env
	id   string
	emit func(Result)

	libStream, drvStream string
	largeStream          string        // read_large, watch_large; empty until appended
	subBefore, subLast   uint64        // sub_catchup, sub_tx: their events' positions; 0 until appended
	fullReplay           time.Duration // library load_aggregate, best of its reps
}

func (b *bench) result(op string, events int, lib, drv float64) Result {
	r := Result{Backend: b.env.name, Op: op, Events: events, LibraryPerS: lib, DriverPerS: drv,
		PeakRSSMB: selfPeakRSSMB(), RSSScope: "this process, whole run so far"}
	if drv > 0 {
		r.Ratio = lib / drv
	}
	return r
}

// events returns n events of the counter aggregate, ready to append, and
// their data.
func counterEvents(n int) ([]eventstore.Event, [][]byte, error) {
	reg, err := counterCodec()
	if err != nil {
		return nil, nil, err
	}
	evs := make([]eventstore.Event, n)
	data := make([][]byte, n)
	for i := range evs {
		ev, err := reg.Event(Added{By: 1, Ref: fmt.Sprintf("order-%032d", i)})
		if err != nil {
			return nil, nil, err
		}
		evs[i], data[i] = ev, ev.Data
	}
	return evs, data, nil
}

// appendBatch appends cfg.events events to one stream with the library and
// as many to another with the driver, batch by batch, alternating which
// goes first.
func (b *bench) appendBatch(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("append_batch: %d events, batches of %d", cfg.events, cfg.batch)
	b.libStream, b.drvStream = "bench-"+b.id+"-lib", "bench-"+b.id+"-drv"
	evs, data, err := counterEvents(cfg.batch)
	if err != nil {
		return err
	}
	var libT, drvT time.Duration
	for i, n := 0, 0; n < cfg.events; i, n = i+1, n+cfg.batch {
		k := min(cfg.batch, cfg.events-n)
		lib := func() error {
			t := time.Now()
			_, err := b.env.store.Append(ctx, b.libStream, eventstore.Exact(uint64(n)), evs[:k]...)
			libT += time.Since(t)
			return err
		}
		drv := func() error {
			t := time.Now()
			err := b.env.drv.appendBatch(ctx, b.drvStream, uint64(n), evs[0].Type, data[:k])
			drvT += time.Since(t)
			return err
		}
		if err := alternate(i, lib, drv); err != nil {
			return fmt.Errorf("append_batch: %w", err)
		}
	}
	r := b.result("append_batch", cfg.events, perSecond(cfg.events, libT), perSecond(cfg.events, drvT))
	r.Target, r.Met = atLeast(r.Ratio, 0.8)
	b.emit(r)
	// The reads that follow are planned with statistics, for both sides,
	// as on a database whose autovacuum has run: without them PostgreSQL
	// guessed the driver's one query over the stream as a sort of every
	// row on disk, and the library's pages as index walks, which
	// flattered the library.
	if a, ok := b.env.drv.(interface{ analyze(context.Context) error }); ok {
		if err := a.analyze(ctx); err != nil {
			return fmt.Errorf("append_batch: analyze: %w", err)
		}
	}
	return nil
}

// alternate runs a then b on even i, b then a on odd i.
func alternate(i int, a, b func() error) error {
	if i%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func atLeast(ratio, want float64) (string, bool) {
	return fmt.Sprintf("ratio >= %g", want), ratio >= want
}

// readStream reads the library's stream whole with the library and with
// the driver, in lockstep (see lockstep), readReps times.
func (b *bench) readStream(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("read_stream: %d reads per side, in lockstep", cfg.readReps)
	// An untimed read first: the first reader of freshly written rows
	// pays for cold caches (and, on PostgreSQL, for setting the rows'
	// hint bits), and in lockstep that would always be the side that goes
	// first.
	if err := b.driverRead(ctx, func() {}); err != nil {
		return fmt.Errorf("read_stream: warm-up: %w", err)
	}
	var st steps
	for i := range cfg.readReps {
		d, err := lockstep(i%2,
			func(pause func()) error {
				n := 0
				for _, err := range b.env.store.Read(ctx, b.libStream, eventstore.ReadOptions{}) {
					if err != nil {
						return err
					}
					if n++; b.cfg.turnEnds(n) {
						pause()
					}
				}
				return countErr(n, cfg.events, nil)
			},
			func(pause func()) error { return b.driverRead(ctx, pause) },
		)
		if err != nil {
			return fmt.Errorf("read_stream: %w", err)
		}
		st.add(d)
	}
	lib, drv, med := st.rates(cfg.events)
	r := b.result("read_stream", cfg.events, lib, drv)
	r.RatioMedian = med
	r.Target, r.Met = atLeast(r.Ratio, 0.9)
	if err := b.childRSS(ctx, &r, "read", "driver-read"); err != nil {
		return err
	}
	b.emit(r)
	return nil
}

// driverRead reads the library's stream whole with the driver, calling
// pause every -lockstep-chunk events.
func (b *bench) driverRead(ctx context.Context, pause func()) error {
	k := 0
	n, err := b.env.drv.read(ctx, b.libStream, 1, func(uint64, string, []byte) error {
		if k++; b.cfg.turnEnds(k) {
			pause()
		}
		return nil
	})
	return countErr(n, b.cfg.events, err)
}

// turnEnds says whether the k-th event (from 1) of a lockstep side ends its
// turn: every chunk events (-lockstep-chunk; 4,096 by default, a few
// milliseconds of work), never when chunk is 0, so that each side then
// runs whole, the two alternating which goes first.
func (c *config) turnEnds(k int) bool {
	return c.chunk > 0 && k%c.chunk == 0
}

// lockstep runs the library's side (sides[0]) and the driver's (sides[1])
// taking turns, sides[first] first: each calls pause every -lockstep-chunk
// events, which stops its clock and lets the other side run its next
// chunk. Both sides then meet the same load on a shared, noisy machine,
// chunk by chunk, which whole-run alternation cannot promise. It returns
// each side's time.
func lockstep(first int, sides ...func(pause func()) error) (steps, error) {
	var (
		mu     sync.Mutex
		done   [2]bool
		chunks [2][]time.Duration
		total  [2]time.Duration
		errs   [2]error
		wg     sync.WaitGroup
	)
	turn := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	for i := range 2 {
		wg.Go(func() {
			o := 1 - i
			<-turn[i]
			start := time.Now()
			pause := func() {
				d := time.Since(start)
				chunks[i] = append(chunks[i], d)
				total[i] += d
				mu.Lock()
				otherDone := done[o]
				mu.Unlock()
				if !otherDone {
					turn[o] <- struct{}{}
					<-turn[i]
				}
				start = time.Now()
			}
			errs[i] = sides[i](pause)
			total[i] += time.Since(start) // with the last, partial chunk
			mu.Lock()
			done[i] = true
			otherDone := done[o]
			mu.Unlock()
			if !otherDone {
				turn[o] <- struct{}{}
			}
		})
	}
	turn[first] <- struct{}{}
	wg.Wait()
	return steps{lib: chunks[0], drv: chunks[1], libTotal: total[0], drvTotal: total[1], runs: 1},
		errors.Join(errs[:]...)
}

// steps are the times of lockstep runs: each side's full chunks and
// total time.
type steps struct {
	lib, drv           []time.Duration
	libTotal, drvTotal time.Duration
	runs               int
}

func (s *steps) add(o steps) {
	s.lib, s.drv = append(s.lib, o.lib...), append(s.drv, o.drv...)
	s.libTotal, s.drvTotal, s.runs = s.libTotal+o.libTotal, s.drvTotal+o.drvTotal, s.runs+o.runs
}

// rates returns each side's events per second over its total time, and
// the ratio of the sides' median full chunks (of -lockstep-chunk events) for
// comparison; nil with fewer than 8 full chunks per side. The median
// resists a burst of load from another process, but on PostgreSQL it
// mostly measures the client: while one side is paused its server keeps
// sending rows into the socket, so a chunk partly reads what is already
// there. The totals, which include every wait on the server, are the
// figures.
func (s *steps) rates(events int) (lib, drv float64, medianRatio *float64) {
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	n := events * s.runs
	lib, drv = perSecond(n, s.libTotal), perSecond(n, s.drvTotal)
	if len(s.lib) >= 8 && len(s.drv) >= 8 {
		r := median(s.drv).Seconds() / median(s.lib).Seconds()
		medianRatio = &r
	}
	return lib, drv, medianRatio
}

func countErr(got, want int, err error) error {
	if err == nil && got != want {
		err = fmt.Errorf("read %d events, want %d", got, want)
	}
	return err
}

// libraryRead reads a stream whole through the Store and counts it.
func libraryRead(ctx context.Context, s eventstore.Store, stream string) (int, error) {
	n := 0
	for _, err := range s.Read(ctx, stream, eventstore.ReadOptions{}) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// childRSS runs libOp (and drvOp, unless empty) in child processes over
// the same store and records their peak RSS in r; the RSS limit of the
// issue (64 MB) becomes part of r's target.
func (b *bench) childRSS(ctx context.Context, r *Result, libOp, drvOp string) error {
	if !b.cfg.childRSS {
		return nil
	}
	lib, err := runChild(ctx, b.env.childEnv, libOp, b.libStream, b.cfg.events)
	if err != nil {
		return fmt.Errorf("%s: child: %w", r.Op, err)
	}
	r.PeakRSSMB, r.RSSScope = lib.peakMB, "child process doing only this operation over the whole stream"
	if drvOp != "" {
		drv, err := runChild(ctx, b.env.childEnv, drvOp, b.libStream, b.cfg.events)
		if err != nil {
			return fmt.Errorf("%s: driver child: %w", r.Op, err)
		}
		r.DriverPeakRSSMB = &drv.peakMB
	}
	r.Target += " and peak_rss_mb <= 64"
	r.Met = r.Met && r.PeakRSSMB <= 64
	return nil
}

// loadAggregate loads the counter over the library's whole stream with
// Repository.Load, in lockstep with the driver's read: the counter's
// reducer calls pause every -lockstep-chunk events.
func (b *bench) loadAggregate(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("load_aggregate: %d loads per side, in lockstep", cfg.loadReps)
	var st steps
	for i := range cfg.loadReps {
		d, err := lockstep(i%2,
			func(pause func()) error {
				k := 0
				repo, err := newCounterRepoWith(b.env.store, 0, func(s Counter, e CounterEvent) Counter {
					if k++; b.cfg.turnEnds(k) {
						pause()
					}
					return evolve(s, e)
				}, nil)
				if err != nil {
					return err
				}
				a, err := repo.Load(ctx, b.libStream)
				if err == nil && (a.State().N != int64(cfg.events) || a.Version() != uint64(cfg.events)) {
					err = fmt.Errorf("loaded N=%d at version %d, want %d", a.State().N, a.Version(), cfg.events)
				}
				return err
			},
			func(pause func()) error { return b.driverRead(ctx, pause) },
		)
		if err != nil {
			return fmt.Errorf("load_aggregate: %w", err)
		}
		st.add(d)
	}
	lib, drv, med := st.rates(cfg.events)
	b.fullReplay = st.libTotal / time.Duration(st.runs) // for load_snapshot's replay_ratio
	r := b.result("load_aggregate", cfg.events, lib, drv)
	r.RatioMedian = med
	// Issue 13 item 6: a Load (read, decode, fold) within 5% of the
	// driver's bare read of the same rows.
	r.Target, r.Met = atLeast(r.Ratio, 0.95)
	if err := b.childRSS(ctx, &r, "load", ""); err != nil {
		return err
	}
	b.emit(r)
	return nil
}

// loadSnapshot adds snapEvery+snapTail events to the library's stream
// through a repository that snapshots every snapEvery events, so that the
// stream ends snapTail events after a snapshot, then times loads of it
// with the library and with the driver (snapshot row, state decode, the
// events after it).
func (b *bench) loadSnapshot(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("load_snapshot: %d loads per side", cfg.snapLoads)
	var snapErr error
	repo, err := newCounterRepo(b.env.store, cfg.snapEvery, func(_ context.Context, _ string, err error) { snapErr = err })
	if err != nil {
		return err
	}
	a, err := repo.Load(ctx, b.libStream)
	if err != nil {
		return fmt.Errorf("load_snapshot: %w", err)
	}
	for _, n := range []int{int(cfg.snapEvery), cfg.snapTail} {
		for range n {
			a.Record(Added{By: 1, Ref: "snapshot-bench"})
		}
		if err := repo.Save(ctx, a); err != nil {
			return fmt.Errorf("load_snapshot: save: %w", err)
		}
	}
	if snapErr != nil {
		return fmt.Errorf("load_snapshot: snapshot: %w", snapErr)
	}
	want := a.State().N
	lib, drv := make([]time.Duration, 0, cfg.snapLoads), make([]time.Duration, 0, cfg.snapLoads)
	for i := range cfg.snapLoads {
		libLoad := func() error {
			t := time.Now()
			got, err := repo.Load(ctx, b.libStream)
			lib = append(lib, time.Since(t))
			switch {
			case err != nil:
				return err
			case got.State().N != want || got.SnapshotVersion() == 0:
				return fmt.Errorf("loaded N=%d from snapshot %d, want %d from a snapshot", got.State().N, got.SnapshotVersion(), want)
			}
			return nil
		}
		drvLoad := func() error {
			t := time.Now()
			n, err := driverLoad(ctx, b.env.drv, b.libStream)
			drv = append(drv, time.Since(t))
			if err == nil && n != want {
				err = fmt.Errorf("driver loaded N=%d, want %d", n, want)
			}
			return err
		}
		if err := alternate(i, libLoad, drvLoad); err != nil {
			return fmt.Errorf("load_snapshot: %w", err)
		}
	}
	lp50, lp99 := percentiles(lib)
	dp50, dp99 := percentiles(drv)
	r := b.result("load_snapshot", cfg.events+int(cfg.snapEvery)+cfg.snapTail, 1/lp50.Seconds(), 1/dp50.Seconds())
	r.Count = cfg.snapLoads
	setLatency(&r, lp50, lp99, dp50, dp99)
	rr := lp50.Seconds() / b.fullReplay.Seconds()
	r.ReplayRatio = &rr
	// The target is 1/1000 of the full replay at 1,000,000
	// events. A snapshot load costs the same whatever the stream's
	// length, the full replay grows with it: at fewer events the bound
	// scales up accordingly (0.005 at 200,000).
	bound := 0.001 * max(1, 1e6/float64(cfg.events))
	r.Target, r.Met = fmt.Sprintf("replay_ratio <= %g (0.001 at 1,000,000 events, scaled)", bound), rr <= bound
	b.emit(r)
	return nil
}

func setLatency(r *Result, lp50, lp99, dp50, dp99 time.Duration) {
	ms := func(d time.Duration) *float64 { f := float64(d) / float64(time.Millisecond); return &f }
	r.P50Ms, r.P99Ms, r.DriverP50Ms, r.DriverP99Ms = ms(lp50), ms(lp99), ms(dp50), ms(dp99)
}

// percentiles returns the 50th and 99th percentiles of d (sorted in
// place), nearest rank.
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return rank(0.50), rank(0.99)
}

// appendConcurrent has cfg.writers goroutines append single events, each
// to its own stream, with the library and then with the driver, twice,
// each round doing half of perWriter appends per goroutine.
func (b *bench) appendConcurrent(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("append_concurrent: %d goroutines × %d appends per side", cfg.writers, cfg.perWriter)
	_, data, err := counterEvents(1)
	if err != nil {
		return err
	}
	ev := eventstore.Event{Type: typeAdded, Data: data[0]}
	libVersions := make([]uint64, cfg.writers)
	var libT, drvT time.Duration
	var libLat, drvLat []time.Duration
	for round := range 2 {
		per := cfg.perWriter / 2
		if round == 1 {
			per = cfg.perWriter - per
		}
		lib := func() error {
			d, lat, err := concurrently(ctx, cfg.writers, per, func(g int) error {
				_, err := b.env.store.Append(ctx, fmt.Sprintf("conc-%s-lib-%d", b.id, g), eventstore.Exact(libVersions[g]), ev)
				libVersions[g]++
				return err
			})
			libT += d
			libLat = append(libLat, lat...)
			return err
		}
		drv := func() error {
			d, lat, err := concurrently(ctx, cfg.writers, per, func(g int) error {
				return b.env.drv.appendOne(ctx, fmt.Sprintf("conc-%s-drv-%d", b.id, g), typeAdded, data[0])
			})
			drvT += d
			drvLat = append(drvLat, lat...)
			return err
		}
		if err := alternate(round, lib, drv); err != nil {
			return fmt.Errorf("append_concurrent: %w", err)
		}
	}
	total := cfg.writers * cfg.perWriter
	r := b.result("append_concurrent", total, perSecond(total, libT), perSecond(total, drvT))
	r.Count = total
	lp50, lp99 := percentiles(libLat)
	dp50, dp99 := percentiles(drvLat)
	setLatency(&r, lp50, lp99, dp50, dp99)
	want := 4.0
	if b.env.name == "postgres" {
		want = 1.5
	}
	r.Target, r.Met = atLeast(r.Ratio, want)
	b.emit(r)
	return nil
}

// concurrently runs op per times in each of n goroutines and returns the
// wall time and every op's latency. The first error stops the goroutines.
func concurrently(ctx context.Context, n, per int, op func(g int) error) (time.Duration, []time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		lats[g] = make([]time.Duration, 0, per)
		wg.Go(func() {
			<-start
			for range per {
				if ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := op(g); err != nil {
					errs[g] = err
					cancel()
					return
				}
				lats[g] = append(lats[g], time.Since(t))
			}
		})
	}
	t := time.Now()
	close(start)
	wg.Wait()
	d := time.Since(t)
	if err := errors.Join(errs...); err != nil {
		return d, nil, err
	}
	return d, slices.Concat(lats...), nil
}

// newCounterRepo returns a repository of the counter aggregate; snapEvery
// 0 means no snapshots (Load replays every event).
func newCounterRepo(s eventstore.Store, snapEvery uint64, onSnapErr func(context.Context, string, error)) (*aggregate.Repository[Counter, CounterEvent], error) {
	return newCounterRepoWith(s, snapEvery, evolve, onSnapErr)
}

func newCounterRepoWith(s eventstore.Store, snapEvery uint64, evolve func(Counter, CounterEvent) Counter, onSnapErr func(context.Context, string, error)) (*aggregate.Repository[Counter, CounterEvent], error) {
	reg, err := counterCodec()
	if err != nil {
		return nil, err
	}
	cfg := aggregate.Config[Counter, CounterEvent]{Evolve: evolve, Codec: reg, OnSnapshotError: onSnapErr}
	if snapEvery > 0 {
		cfg.SnapshotEvery, cfg.SnapshotSchema = snapEvery, counterSchema
	}
	return aggregate.NewRepository(s, cfg)
}
