package aggregate_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// syncLog is a slog text log in memory, safe for concurrent use.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncLog) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// count returns the number of lines at level with message msg.
func (b *syncLog) count(level, msg string) int {
	n := 0
	for _, l := range b.lines() {
		if strings.Contains(l, "level="+level+" ") && strings.Contains(l, `msg="`+msg+`"`) {
			n++
		}
	}
	return n
}

// TestLogging: one logger given to the store and the repository gets an
// Update's conflicts (the store's and the repository's retries at Debug)
// and its giving up (Warn); without a logger nothing is logged, not even
// to slog's default logger (issue 14).
func TestLogging(t *testing.T) {
	var buf syncLog
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := sqlite.Open(t.Context(), "", sqlite.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{Logger: logger, MaxAttempts: 2, RetryDelay: -1})

	ctx := t.Context()
	cleared, err := counterCodec(t).Event(Cleared{})
	if err != nil {
		t.Fatal(err)
	}
	// A rival writes between each load and save: every attempt conflicts.
	_, err = repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) {
		appendRaw(t, store, "c", cleared)
		return []CounterEvent{Added{By: 1}}, nil
	})
	if !errors.Is(err, eventstore.ErrConcurrency) || !errors.Is(err, aggregate.ErrGaveUp) {
		t.Fatalf("Update: %v, want a conflict after its attempts (ErrGaveUp)", err)
	}
	for _, c := range []struct {
		level, msg string
		want       int
	}{
		{"DEBUG", "esv2: append conflict", 2},
		{"DEBUG", "esv2: update conflict, retrying", 1},
		{"WARN", "esv2: update gave up", 1},
	} {
		if got := buf.count(c.level, c.msg); got != c.want {
			t.Errorf("%d lines %s %q, want %d; log:\n%s", got, c.level, c.msg, c.want, strings.Join(buf.lines(), "\n"))
		}
	}
	if l := buf.lines()[0]; !strings.Contains(l, "stream=c") {
		t.Errorf("first line does not name the stream: %s", l)
	}

	// Without loggers: nothing, anywhere.
	var def syncLog
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)
	quiet := openSQLite(t, "")
	qrepo := newRepo(t, quiet, aggregate.Config[Counter, CounterEvent]{MaxAttempts: 2, RetryDelay: -1})
	_, err = qrepo.Update(context.Background(), "c", func(Counter) ([]CounterEvent, error) {
		appendRaw(t, quiet, "c", cleared)
		return []CounterEvent{Added{By: 1}}, nil
	})
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("Update without a logger: %v, want a conflict", err)
	}
	if l := def.lines(); len(l) != 1 || l[0] != "" {
		t.Errorf("logged without a logger:\n%s", strings.Join(l, "\n"))
	}
}
