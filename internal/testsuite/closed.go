package testsuite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func closeTests() []test {
	return []test{
		{"EveryMethodReturnsErrClosed", leaf(testClosedMethods)},
		{"Idempotent", leaf(testCloseIdempotent)},
		{"Concurrent", leaf(testCloseConcurrent)},
		{"DuringUse", leaf(testCloseDuringUse)},
		{"IteratorsMadeBeforeClose", leaf(testCloseIterators)},
	}
}

func testClosedMethods(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("e1", "t"))
	save(t, s, eventstore.Snapshot{StreamID: "s", Version: 1})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := ctxTimeout(t)
	_, err := s.Append(ctx, "s", eventstore.Any, ev("t", "2"))
	wantErr(t, "Append after Close", err, eventstore.ErrClosed)
	_, err = s.Append(ctx, "s", eventstore.Any)
	wantErr(t, "empty Append after Close", err, eventstore.ErrClosed)
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, backwards := range []bool{false, true} {
			got, err := readErr(t, "Read", s.Read(ctx, stream, eventstore.ReadOptions{Backwards: backwards}))
			if len(got) != 0 {
				t.Errorf("Read(%q) after Close yielded %d events", stream, len(got))
			}
			wantErr(t, fmt.Sprintf("Read(%q, backwards=%v) after Close", stream, backwards), err, eventstore.ErrClosed)
		}
		for _, from := range []eventstore.Start{eventstore.FromEnd(), eventstore.FromStart(), eventstore.After(1)} {
			got, err := readErr(t, "Watch", s.Watch(ctx, stream, eventstore.WatchOptions{From: from}))
			if len(got) != 0 {
				t.Errorf("Watch(%q) after Close yielded %d events", stream, len(got))
			}
			wantErr(t, fmt.Sprintf("Watch(%q, %+v) after Close", stream, from), err, eventstore.ErrClosed)
		}
		_, err := s.Info(ctx, stream)
		wantErr(t, fmt.Sprintf("Info(%q) after Close", stream), err, eventstore.ErrClosed)
	}
	err = s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 2})
	wantErr(t, "SaveSnapshot after Close", err, eventstore.ErrClosed)
	_, err = s.LoadSnapshot(ctx, "s", "")
	wantErr(t, "LoadSnapshot after Close", err, eventstore.ErrClosed)
	for _, id := range []string{"e1", "missing"} {
		_, err = s.FindEvent(ctx, id)
		wantErr(t, fmt.Sprintf("FindEvent(%q) after Close", id), err, eventstore.ErrClosed)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func testCloseIdempotent(t *testing.T, s eventstore.Store) {
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d: %v, want nil", i+1, err)
		}
	}
}

func testCloseConcurrent(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	start := make(chan struct{})
	var g errgroup.Group
	for i := range 4 {
		g.Go(func() error {
			<-start
			if err := s.Close(); err != nil {
				return fmt.Errorf("close #%d: %w", i, err)
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Errorf("concurrent Close: %v", err)
	}
	if _, err := s.Info(ctxTimeout(t), "s"); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Info after concurrent Close: %v, want ErrClosed", err)
	}
}

// testCloseDuringUse closes the store while writers, readers and watchers
// are busy: every call in flight ends, successfully or with ErrClosed,
// never with a raw driver error and never hanging.
func testCloseDuringUse(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(50, "t", "e")...)
	ctx := ctxTimeout(t)
	started := make(chan struct{}, 8)
	var g errgroup.Group
	// endsClosed runs op until it fails and checks that it failed with
	// ErrClosed.
	endsClosed := func(name string, op func() error) {
		g.Go(func() error {
			started <- struct{}{}
			for {
				err := op()
				if err == nil {
					continue
				}
				if !errors.Is(err, eventstore.ErrClosed) {
					return fmt.Errorf("%s during Close: %w (want ErrClosed)", name, err)
				}
				return nil
			}
		})
	}
	for w := range 3 {
		endsClosed(fmt.Sprint("Append ", w), func() error {
			_, err := s.Append(ctx, fmt.Sprint("w", w), eventstore.Any, ev("t", "x"))
			return err
		})
	}
	endsClosed("Read", func() error {
		_, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
		return err
	})
	endsClosed("Info", func() error {
		_, err := s.Info(ctx, "s")
		return err
	})
	endsClosed("Watch", func() error {
		for _, err := range s.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return err
			}
		}
		return errors.New("watch ended without an error")
	})
	for range 6 {
		<-started
	}
	// Let every goroutine make some calls, as shown by a writer's events,
	// taken by ranging over a watch of its stream here (a watcher that
	// buffered them could fill its buffer over a fast store: the writers
	// append without pause). w, a watcher of a quiet stream, is live when
	// Close comes.
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(0)})
	w.next(t, 50)
	n := 0
	for _, err := range s.Watch(ctx, "w0", eventstore.WatchOptions{}) {
		if err != nil {
			t.Fatalf("watching a writer's stream: %v", err)
		}
		if n++; n == 3 {
			break
		}
	}
	if err := closeWithin(t, s); err != nil {
		t.Errorf("Close: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("calls in flight did not end within %v of Close", waitTimeout)
	}
	if err := w.end(t); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("watch ended with %v at Close, want ErrClosed", err)
	}
}

// testCloseIterators makes reads and watches before Close and ranges over
// them after it: the store was closed when they ran, so each yields
// ErrClosed and nothing else (the driver's own error for a closed database
// must not leak through).
func testCloseIterators(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "e")...)
	ctx := ctxTimeout(t)
	type made struct {
		name string
		seq  func(yield func(eventstore.Recorded, error) bool)
	}
	var seqs []made
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, backwards := range []bool{false, true} {
			seqs = append(seqs, made{fmt.Sprintf("Read(%q, backwards=%v)", stream, backwards),
				s.Read(ctx, stream, eventstore.ReadOptions{Backwards: backwards})})
		}
		seqs = append(seqs, made{fmt.Sprintf("Read(%q, filtered)", stream),
			s.Read(ctx, stream, eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{"t"}}})})
		for _, from := range []eventstore.Start{eventstore.FromEnd(), eventstore.FromStart(), eventstore.After(1)} {
			seqs = append(seqs, made{fmt.Sprintf("Watch(%q, %+v)", stream, from),
				s.Watch(ctx, stream, eventstore.WatchOptions{From: from})})
		}
		seqs = append(seqs, made{fmt.Sprintf("Watch(%q, filtered)", stream),
			s.Watch(ctx, stream, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: eventstore.Filter{Types: []string{"t"}}})})
	}
	closeOrFail(t, s)
	for _, m := range seqs {
		err := within(t, ctx, s, call{name: m.name, do: func(context.Context, eventstore.Store) error { return seqErr(m.seq) }})
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s made before Close, ranged after it: %v, want ErrClosed", m.name, err)
		}
	}
}

// closeWithin closes s and returns Close's error, failing the test if
// Close does not return within waitTimeout: Close is bounded, even with
// calls in flight (issue 9 item 4).
func closeWithin(t *testing.T, s eventstore.Store) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("Close did not return within %v", waitTimeout)
		return nil
	}
}
