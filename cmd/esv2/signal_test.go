//go:build unix

package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// TestTailFollowsAndEndsOnInterrupt runs tail as a process, appends from
// another store on the same file, waits for tail to print the event, then
// interrupts it: it must exit with status 0 and print no error.
func TestTailFollowsAndEndsOnInterrupt(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "app.db")
	if err := seed(ctx, path); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--db", path, "tail", "$all", "--after", "5")
	cmd.Env = append(os.Environ(), "ESV2_TEST_AS_COMMAND=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, "order-9", eventstore.NoStream, eventstore.Event{Type: "OrderPlaced", Data: []byte(`{"n":9}`), Time: seedTime})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case got := <-lines:
		if want := `6 order-9 1 OrderPlaced 2026-01-02T03:04:00Z {"n":9}`; got != want {
			t.Fatalf("tail printed %q, want %q", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tail printed nothing in 30 s; stderr: %s", stderr.String())
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tail after an interrupt: %v, want exit status 0; stderr: %s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("tail wrote to stderr: %s", stderr.String())
	}
}
