package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary play the child of runChild, as the
// command does.
func TestMain(m *testing.M) {
	if op := os.Getenv(childEnv); op != "" {
		os.Exit(childMain(op))
	}
	os.Exit(m.Run())
}

var allOps = []string{"append_batch", "read_stream", "load_aggregate", "load_snapshot", "append_concurrent", "watch_latency", "watch_fanout/1", "watch_fanout/100", "update_hot", "read_category", "read_large", "watch_large",
	"sub_catchup", "sub_tx", "sub_live"}

// wantOps returns the operations a run of backend reports, of ops:
// update_hot/2proc and sub_group only on PostgreSQL.
func wantOps(backend string, ops []string) []string {
	if backend == "postgres" {
		ops = slices.Clone(ops)
		if i := slices.Index(ops, "append_concurrent"); i >= 0 {
			ops = slices.Insert(ops, i+1, "append_multiprocess")
		}
		if i := slices.Index(ops, "update_hot"); i >= 0 {
			ops = slices.Insert(ops, i+1, "update_hot/2proc")
		}
		return append(ops, "sub_group")
	}
	return ops
}

// smallConfig is a smoke-sized run: figures are not asserted, only that
// every operation runs on both sides and reports positive figures.
func smallConfig(backend string) config {
	cfg := defaultConfig()
	cfg.backend, cfg.events = backend, 2000
	cfg.writers, cfg.perWriter = 8, 4
	cfg.watchers, cfg.watchStreams, cfg.watchPer = 20, 5, 2
	cfg.watchEvery = time.Millisecond
	cfg.fanWatchers, cfg.fanRounds = 200, 2
	cfg.hotWriters, cfg.hotPer, cfg.mpPer = 8, 4, 4
	cfg.snapLoads, cfg.readReps = 10, 2
	cfg.largeEvents, cfg.largeSize = 20, 64<<10
	cfg.subEvents, cfg.liveAppends, cfg.groupEvents = 2000, 200, 2000
	// A short lease: the group's members share the partitions within a
	// second, not the default's three.
	cfg.groupLease = 300 * time.Millisecond
	return cfg
}

func runSmall(t *testing.T, cfg config, want []string) {
	t.Helper()
	var got []Result
	if err := run(t.Context(), cfg, func(r Result) { got = append(got, r) }); err != nil {
		t.Fatalf("run: %v", err)
	}
	var ops []string
	for _, r := range got {
		ops = append(ops, r.Op)
		if r.Backend != cfg.backend || r.Events <= 0 || r.LibraryPerS <= 0 || r.DriverPerS <= 0 || r.Ratio <= 0 || r.PeakRSSMB <= 0 || r.Target == "" {
			t.Errorf("%s: a figure is missing or not positive: %+v", r.Op, r)
		}
		latency := r.Op == "load_snapshot" || r.Op == "append_concurrent" || r.Op == "watch_latency" || strings.HasPrefix(r.Op, "watch_fanout/") || r.Op == "sub_live" || r.Op == "update_hot"
		if latency && (r.P50Ms == nil || r.P99Ms == nil || r.DriverP50Ms == nil || r.DriverP99Ms == nil || *r.P99Ms < *r.P50Ms) {
			t.Errorf("%s: latencies missing or inconsistent: %+v", r.Op, r)
		}
		if strings.HasPrefix(r.Op, "update_hot") && (r.GiveUps == nil || r.P99Ms == nil) {
			t.Errorf("%s: give-ups or latency missing: %+v", r.Op, r)
		}
		if r.Op == "load_snapshot" && (r.ReplayRatio == nil || *r.ReplayRatio <= 0) {
			t.Errorf("load_snapshot: no replay_ratio: %+v", r)
		}
		if (r.Op == "read_stream" || r.Op == "load_aggregate" || r.Op == "read_large" || r.Op == "watch_large") && !strings.HasPrefix(r.RSSScope, "child") {
			t.Errorf("%s: peak RSS not measured in a child: %q", r.Op, r.RSSScope)
		}
		if (r.Op == "read_large" || r.Op == "watch_large") && (r.BaselineRSSMB == nil || *r.BaselineRSSMB <= 0 || *r.BaselineRSSMB > r.PeakRSSMB) {
			t.Errorf("%s: baseline RSS missing or above the peak: %+v", r.Op, r)
		}
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("operations reported (-want +got):\n%s", diff)
	}
}

func TestRunSQLite(t *testing.T) {
	cfg := smallConfig("sqlite")
	cfg.path = filepath.Join(t.TempDir(), "bench.db")
	runSmall(t, cfg, wantOps(cfg.backend, allOps))
}

func TestRunPostgres(t *testing.T) {
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set ESV2_POSTGRES_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL benchmark smoke test")
	}
	cfg := smallConfig("postgres")
	cfg.dsn = dsn
	runSmall(t, cfg, wantOps(cfg.backend, allOps))
}

// TestSubscriptionOps runs the subscription operations alone (-only
// subscription), small, on SQLite and, given ESV2_POSTGRES_DSN, on
// PostgreSQL, where the group's members are child processes (this test
// binary, see TestMain).
func TestSubscriptionOps(t *testing.T) {
	backends := []string{"sqlite"}
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn != "" {
		backends = append(backends, "postgres")
	} else {
		t.Log("ESV2_POSTGRES_DSN unset: PostgreSQL not measured")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			cfg := smallConfig(backend)
			cfg.dsn, cfg.only = dsn, "subscription"
			cfg.subEvents, cfg.subBatch, cfg.groupEvents = 1500, 50, 1500
			if backend == "sqlite" {
				cfg.path = filepath.Join(t.TempDir(), "bench.db")
			}
			runSmall(t, cfg, wantOps(backend, []string{"sub_catchup", "sub_tx", "sub_live"}))
		})
	}
}

// TestLargeEventsRSS is issue 9 item 3: reading, and watching from the
// start, events of 1 MiB each keeps the peak RSS of a child process doing
// only that within 64 MB (plus one event) of its baseline, on both
// backends. Pages sized in rows alone held hundreds of such events (902 MB
// for a read of 1,200 on SQLite). 400 events, not the 1,200, to
// keep the test short: enough for a page of 256 rows, or a watch's 512,
// to break the bound, and the bound does not grow with the stream;
// esbench's read_large and watch_large measure the 1,200.
func TestLargeEventsRSS(t *testing.T) {
	if raceEnabled {
		// Measured under -race the child's baseline triples and every
		// byte read also costs shadow memory; the bound is for the
		// library as users build it. .ci/run runs this test without
		// -race.
		t.Skip("RSS bounds are checked without -race (see .ci/run)")
	}
	backends := []string{"sqlite"}
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn != "" {
		backends = append(backends, "postgres")
	} else {
		t.Log("ESV2_POSTGRES_DSN unset: PostgreSQL not measured")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.backend, cfg.dsn, cfg.only, cfg.events = backend, dsn, "read_large,watch_large", cfg.batch
			cfg.largeEvents = 400
			if backend == "sqlite" {
				cfg.path = filepath.Join(t.TempDir(), "bench.db")
			}
			var got []Result
			if err := run(t.Context(), cfg, func(r Result) { got = append(got, r) }); err != nil {
				t.Fatalf("run: %v", err)
			}
			if len(got) != 2 {
				t.Fatalf("got %d results, want read_large and watch_large: %+v", len(got), got)
			}
			for _, r := range got {
				if r.BaselineRSSMB == nil {
					t.Fatalf("%s: no baseline: %+v", r.Op, r)
				}
				t.Logf("%s %s: peak %.1f MB, baseline %.1f MB, driver's read %.1f MB", backend, r.Op, r.PeakRSSMB, *r.BaselineRSSMB, *r.DriverPeakRSSMB)
				if !r.Met {
					t.Errorf("%s %s: peak RSS %.1f MB is %.1f MB over the baseline; want %s", backend, r.Op, r.PeakRSSMB, r.PeakRSSMB-*r.BaselineRSSMB, r.Target)
				}
			}
		})
	}
}

// TestJSONLine checks the shape of a -json line: the keys the issue names.
func TestJSONLine(t *testing.T) {
	p50, p99 := 1.5, 3.0
	b, err := json.Marshal(Result{Backend: "sqlite", Op: "watch_latency", Events: 10, LibraryPerS: 2, DriverPerS: 4, Ratio: 0.5,
		P50Ms: &p50, P99Ms: &p99, PeakRSSMB: 30})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"backend", "op", "events", "library_per_s", "driver_per_s", "ratio", "p50_ms", "p99_ms", "peak_rss_mb"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON line %s lacks %q", b, k)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-backend", "oracle"}, `-backend "oracle"`},
		{[]string{"-backend", "postgres", "-dsn", ""}, "needs -dsn"},
		{[]string{"-events", "10"}, "at least 1000"},
		{[]string{"-sub-batch", "0"}, "-sub-batch 0"},
		{[]string{"-lockstep-chunk", "-1"}, "-lockstep-chunk -1"},
		{[]string{"-group-partitions", "2000"}, "-group-partitions 2000"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("realMain(%q) = %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestLockstepChunk checks that -lockstep-chunk sets the sides' turns: with
// turns of 250 events the reads are timed chunk by chunk (ratio_median
// needs at least 8 chunks a side), with 0 each side runs whole and there
// are no chunks to compare.
func TestLockstepChunk(t *testing.T) {
	for _, chunk := range []int{250, 0} {
		cfg := smallConfig("sqlite")
		cfg.path = filepath.Join(t.TempDir(), "bench.db")
		cfg.only, cfg.chunk, cfg.childRSS = "append_batch,read_stream,load_aggregate", chunk, false
		var got []Result
		if err := run(t.Context(), cfg, func(r Result) { got = append(got, r) }); err != nil {
			t.Fatalf("-lockstep-chunk %d: run: %v", chunk, err)
		}
		for _, r := range got {
			if r.Op == "append_batch" {
				continue
			}
			if chunked := r.RatioMedian != nil; chunked != (chunk > 0) || r.Ratio <= 0 {
				t.Errorf("-lockstep-chunk %d: %s: ratio %v, ratio_median %v; want a ratio, and a median only when chunked", chunk, r.Op, r.Ratio, r.RatioMedian)
			}
		}
		if len(got) != 3 {
			t.Errorf("-lockstep-chunk %d: %d results, want 3", chunk, len(got))
		}
	}
}

func TestPercentiles(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(100-i) * time.Millisecond
	}
	p50, p99 := percentiles(d)
	if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 99 * time.Millisecond}, []time.Duration{p50, p99}); diff != "" {
		t.Errorf("percentiles (-want +got):\n%s", diff)
	}
}
