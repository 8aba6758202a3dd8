package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"text/tabwriter"
)

func main() {
	if op := os.Getenv(childEnv); op != "" {
		os.Exit(childMain(op))
	}
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) (code int) {
	fs := flag.NewFlagSet("esbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := defaultConfig()
	fs.StringVar(&cfg.backend, "backend", "sqlite", "store to measure: sqlite or postgres")
	fs.StringVar(&cfg.dsn, "dsn", os.Getenv("ESV2_POSTGRES_DSN"), "PostgreSQL connection string (default $ESV2_POSTGRES_DSN); a fresh schema is made and dropped")
	fs.StringVar(&cfg.path, "path", "", "SQLite database file (default: a temporary file, removed at exit)")
	fs.IntVar(&cfg.events, "events", 1_000_000, "events in the measured stream")
	fs.IntVar(&cfg.largeEvents, "large-events", cfg.largeEvents, "read_large, watch_large: events in the large stream")
	fs.IntVar(&cfg.largeSize, "large-size", cfg.largeSize, "read_large, watch_large: bytes of each event's data (at most the store's 1 MiB event limit)")
	fs.IntVar(&cfg.fanWatchers, "fanout-watchers", cfg.fanWatchers, "watch_fanout: watchers, on one stream and then on 100")
	fs.IntVar(&cfg.fanRounds, "fanout-rounds", cfg.fanRounds, "watch_fanout: rounds, each an append to every stream")
	fs.IntVar(&cfg.subEvents, "sub-events", cfg.subEvents, "sub_catchup, sub_tx: events consumed")
	fs.IntVar(&cfg.subBatch, "sub-batch", cfg.subBatch, "sub_*: the subscriptions' batch size (and the driver's)")
	fs.IntVar(&cfg.liveAppends, "sub-live", cfg.liveAppends, "sub_live: appends per side")
	fs.IntVar(&cfg.liveRate, "sub-rate", cfg.liveRate, "sub_live: appends per second")
	fs.IntVar(&cfg.groupEvents, "group-events", cfg.groupEvents, "sub_group: events in the backlog")
	fs.IntVar(&cfg.groupMembers, "group-members", cfg.groupMembers, "sub_group: member processes of the group")
	fs.IntVar(&cfg.groupPartitions, "group-partitions", cfg.groupPartitions, "sub_group: partitions of the subscription")
	fs.IntVar(&cfg.groupBatch, "group-batch", cfg.groupBatch, "sub_group: the members' batch size (small, so that the handler, not the 2 cores, bounds the group)")
	fs.DurationVar(&cfg.groupCost, "group-cost", cfg.groupCost, "sub_group: the handler's cost per batch")
	fs.DurationVar(&cfg.groupLease, "group-lease", cfg.groupLease, "sub_group: the members' lease TTL (0: the library's default)")
	fs.IntVar(&cfg.hotWriters, "hot-writers", cfg.hotWriters, "update_hot: goroutines updating the one aggregate (on PostgreSQL, update_hot/2proc splits them over 2 processes)")
	fs.IntVar(&cfg.hotPer, "hot-per", cfg.hotPer, "update_hot: Updates per goroutine")
	fs.IntVar(&cfg.mpPer, "mp-per", cfg.mpPer, "append_multiprocess: appends per goroutine (-writers goroutines, over 4 processes and then in this one)")
	fs.IntVar(&cfg.chunk, "lockstep-chunk", cfg.chunk, "read_stream, load_aggregate, sub_catchup: events per turn of the two sides; 0 runs each side whole, alternating which goes first (fair to a side that reads ahead)")
	jsonOut := fs.Bool("json", false, "print one JSON object per line")
	fs.BoolVar(&cfg.quiet, "q", false, "no progress on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&cfg.only, "only", "", "comma-separated operations to run (default all; the reads need append_batch; \"subscription\" is every sub_ operation)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(stderr, "esbench:", err)
		return 2
	}
	if !cfg.quiet {
		cfg.progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "esbench:", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "esbench:", err)
			_ = f.Close() // the StartCPUProfile error is the one to report
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			// A failed Close may have lost the end of the profile.
			if err := f.Close(); err != nil {
				fmt.Fprintln(stderr, "esbench: cpu profile:", err)
				code = 1
			}
		}()
	}
	var results []Result
	var outErr error // the first failed write of a JSON line: -json output is data
	emit := func(r Result) {
		results = append(results, r)
		if *jsonOut {
			b, _ := json.Marshal(r)
			if _, err := fmt.Fprintln(stdout, string(b)); err != nil && outErr == nil {
				outErr = fmt.Errorf("writing the results: %w", err)
			}
		}
	}
	err := errors.Join(run(ctx, cfg, emit), outErr)
	if !*jsonOut {
		printTable(stdout, results)
	}
	if err != nil {
		fmt.Fprintln(stderr, "esbench:", err)
		return 1
	}
	return 0
}

func opt1(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *f)
}

func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\top\tevents\tlibrary/s\tdriver/s\tratio\tp50 ms\tp99 ms\tdrv p50\tdrv p99\tpeak RSS MB\tbase MB\ttarget\tmet\t")
	opt := func(f *float64) string {
		if f == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", *f)
	}
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f\t%.3f\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%v\t\n",
			r.Backend, r.Op, r.Events, r.LibraryPerS, r.DriverPerS, r.Ratio,
			opt(r.P50Ms), opt(r.P99Ms), opt(r.DriverP50Ms), opt(r.DriverP99Ms), r.PeakRSSMB, opt1(r.BaselineRSSMB), r.Target, r.Met)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nratio = library/driver (higher is better); load_snapshot also gives replay_ratio (its latency over the full replay's) with -json.")
	fmt.Fprintln(w, "peak RSS: read_stream, load_aggregate, read_large and watch_large in a child process doing only that operation")
	fmt.Fprintln(w, "(base MB: that child's peak before the operation, store open); other rows: this process so far.")
}
