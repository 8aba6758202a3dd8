package torture_test

import (
	"context"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/internal/torture"
)

// TestWorkloadInProcess runs the torture workload briefly twice in this
// process on one SQLite file (the second run resumes the first's watchers
// and retries its unacknowledged batches) and checks the result: a fast,
// untagged smoke test of the harness itself. The kill/restart run is
// TestTorture, behind the torture build tag.
func TestWorkloadInProcess(t *testing.T) {
	dir := t.TempDir()
	s := runTwice(t, dir, 400*time.Millisecond, func(ctx context.Context, s *sqlite.Store, run int) error {
		return torture.RunChild(ctx, s, torture.Config{Dir: dir, Child: "c0", Run: run, Writers: 3, Seed: 1})
	})
	in, logs, err := torture.Collect(context.Background(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if v := torture.Check(in); len(v) != 0 {
		t.Fatalf("%d violations, first: %v", len(v), v[:min(len(v), 10)])
	}
	seen := 0
	for _, w := range in.Watches {
		seen += len(w.Seen)
	}
	if len(in.Acks) == 0 || len(in.All) == 0 || seen == 0 || len(in.Watches) != 5 {
		t.Fatalf("workload did nothing: %d acks, %d stored, %d watched by %d watchers", len(in.Acks), len(in.All), seen, len(in.Watches))
	}
	if logs.Errors["refused"] != 0 {
		t.Fatalf("appends refused: %v", logs.Samples["refused"])
	}
	t.Logf("%d acks, %d events stored, %d watched, errors %v", len(in.Acks), len(in.All), seen, logs.Errors)
}

// TestCommitWorkloadInProcess runs the commit workload (events without
// IDs, Exact and Any, Repository.Update without a command ID) briefly
// twice on one SQLite file and checks the result: a store without the
// fault must give no violation, so that the PostgreSQL COMMIT-termination
// mode's violations are the store's, not the checker's.
func TestCommitWorkloadInProcess(t *testing.T) {
	dir := t.TempDir()
	s := runTwice(t, dir, 300*time.Millisecond, func(ctx context.Context, s *sqlite.Store, run int) error {
		return torture.RunCommitChild(ctx, s, torture.CommitConfig{Dir: dir, Child: "c0", Run: run, Writers: 4, Seed: 1})
	})
	in, err := torture.CollectCommit(context.Background(), s, dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := torture.CheckCommit(in)
	if v := rep.Violations; len(v) != 0 {
		t.Fatalf("%d violations, first: %v", len(v), v[:min(len(v), 10)])
	}
	for _, k := range []torture.OpKind{torture.OpExact, torture.OpAny, torture.OpUpdate} {
		if rep.Counts[string(k)+" ack"] == 0 {
			t.Errorf("no %s operation acknowledged: %v", k, rep.SortedCounts())
		}
	}
	t.Logf("%d operations, %d events stored: %v", len(in.Ops), len(in.All), rep.SortedCounts())
}

// runTwice runs child for d, twice, on one SQLite file in dir (the second
// run resumes the first), and returns the file opened again for checking,
// closed when the test ends.
func runTwice(t *testing.T, dir string, d time.Duration, child func(context.Context, *sqlite.Store, int) error) *sqlite.Store {
	t.Helper()
	path := dir + "/events.db"
	for run := range 2 {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		err = child(ctx, s, run)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
