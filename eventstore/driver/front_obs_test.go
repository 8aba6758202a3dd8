package driver_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// retryDriver answers every append as a pure retry of the events it holds,
// without a position, as the adapters' drivers do.
type retryDriver struct{ flakyDriver }

func (d *retryDriver) Append(_ context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	res := eventstore.AppendResult{Version: uint64(len(d.events))}
	for i, e := range b.Events {
		res.Duplicates = append(res.Duplicates, eventstore.Duplicate{Index: i, ID: e.ID, Version: uint64(i + 1)})
	}
	return res, nil
}

// TestFrontFindsRetryPosition: the front reports where a pure retry's
// events are when the driver did not say, and 0 (not an error) when they
// are no longer stored.
func TestFrontFindsRetryPosition(t *testing.T) {
	d := &retryDriver{}
	d.events = []eventstore.Recorded{{StreamID: "s", Version: 1, Position: 40}, {StreamID: "s", Version: 2, Position: 70}}
	f := driver.New(d, driver.Config{})
	defer f.Close()
	res, err := f.Append(t.Context(), "s", eventstore.Any, eventstore.Event{ID: "a", Type: "t"}, eventstore.Event{ID: "b", Type: "t"})
	if err != nil || res.Position != 70 {
		t.Errorf("retry: position %d, error %v; want 70 (the last event's), nil", res.Position, err)
	}
	d.mu.Lock()
	d.events = nil // deleted since
	d.mu.Unlock()
	res, err = f.Append(t.Context(), "s", eventstore.Any, eventstore.Event{ID: "a", Type: "t"})
	if err != nil || res.Position != 0 {
		t.Errorf("retry of deleted events: position %d, error %v; want 0, nil", res.Position, err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFrontLogsWatchRetries: with Config.Logger, a watch's page read again
// after a lost connection is logged at Debug.
func TestFrontLogsWatchRetries(t *testing.T) {
	var buf lockedBuffer
	d := &flakyDriver{}
	f := driver.New(d, driver.Config{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := f.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "a"}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.fails = 2
	d.mu.Unlock()
	for _, err := range f.Watch(ctx, "s", eventstore.WatchOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if n := strings.Count(buf.String(), `level=DEBUG msg="esv2: watch lost its connection, reading again"`); n != 2 {
		t.Errorf("%d retry lines, want 2; log:\n%s", n, buf.String())
	}
}
