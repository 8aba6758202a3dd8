package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// TestReplayWait: an application runs a member of subscription "projector"
// whose handler fails on an event, which it parks; the esv2 command, a
// process of its own, requests a replay and waits. While the handler still
// fails, --wait reports its new error with exit status 1; once it is
// fixed, --wait reports the event replayed with exit status 0, and the
// event is no longer parked.
func TestReplayWait(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i, typ := range []string{"OrderPlaced", "AvatarSet", "OrderPlaced"} {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstore.Event{Type: typ, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	const bad = 2 // the AvatarSet event's position
	var broken atomic.Bool
	broken.Store(true)
	var failures atomic.Int64
	var mu sync.Mutex
	var handled []uint64
	sub, err := subscription.NewTx(s, "projector", func(_ context.Context, _ *sql.Tx, events []eventstore.Recorded) error {
		for _, e := range events {
			if e.Type == "AvatarSet" && broken.Load() {
				return fmt.Errorf("decode avatar: failure %d", failures.Add(1))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			handled = append(handled, e.Position)
		}
		return nil
	}, subscription.WithPolicy(subscription.Park), subscription.WithRetries(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitCtx, waitCancel := context.WithTimeout(ctx, 20*time.Second)
	defer waitCancel()
	if err := sub.WaitFor(waitCtx, 3); err != nil {
		t.Fatalf("WaitFor(3): %v", err)
	}
	if ps, err := subscription.ListParked(ctx, s, "projector"); err != nil || len(ps) != 1 || ps[0].Position != bad {
		t.Fatalf("parked: %+v, %v; want position %d", ps, err, bad)
	}

	esv2 := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], append([]string{"--db", path}, args...)...)
		cmd.Env = append(os.Environ(), "ESV2_TEST_AS_COMMAND=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}

	// Still broken: the member tries it, fails, and clears the request.
	stdout, stderr, code := esv2("subscriptions", "replay", "projector", "2", "--wait", "20s")
	if code != exitFailure || !regexp.MustCompile(`^position 2: the handler failed again, still parked: decode avatar: failure \d+\n$`).MatchString(stdout) ||
		!regexp.MustCompile(`the handler failed again on 1 of 1 event\(s\), at position\(s\) 2; they stay parked`).MatchString(stderr) {
		t.Errorf("replay --wait with the handler still broken: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if ps, err := subscription.ListParked(ctx, s, "projector"); err != nil || len(ps) != 1 || !ps[0].ReplayRequested.IsZero() || ps[0].Error == "decode avatar: failure 1" {
		t.Errorf("parked after a failed replay: %+v, %v; want it kept, with a new error and no request", ps, err)
	}

	// Fixed: replayed, and forgotten.
	broken.Store(false)
	stdout, stderr, code = esv2("subscriptions", "replay", "projector", "--all", "--wait", "20s", "--json")
	if want := `{"position":2,"status":"replayed","subscription":"projector"}` + "\n"; code != exitOK || stdout != want || stderr != "" {
		t.Errorf("replay --all --wait with the handler fixed: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}
	if ps, err := subscription.ListParked(ctx, s, "projector"); err != nil || len(ps) != 0 {
		t.Errorf("parked after the replay: %+v, %v; want none", ps, err)
	}
	mu.Lock()
	got := fmt.Sprint(handled)
	mu.Unlock()
	if got != "[1 3 2]" {
		t.Errorf("handled %s, want [1 3 2] (2 at its replay)", got)
	}
	// The member counts just after it wrote what the command saw.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		st := sub.Status()
		if st.Replayed == 1 && st.ReplayFailed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("Status: Replayed %d, ReplayFailed %d; want 1 and 1", st.Replayed, st.ReplayFailed)
			break
		}
	}
	stdout, _, code = esv2("subscriptions", "replay", "projector", "--all")
	if code != exitOK || stdout != "subscription \"projector\" has no parked event to replay\n" {
		t.Errorf("replay --all with nothing parked: exit %d, stdout %q", code, stdout)
	}
}
