package testsuite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// The order of the checks every method starts with (issue 10): a nil
// context is a *ValidationError, then an ended context is its error, then
// a closed store is ErrClosed, and only then are the arguments checked. The
// adapters used to disagree: SQLite answered invalid input on a closed
// store with a ValidationError, PostgreSQL with ErrClosed. Each case below
// fails on a store that makes two of the checks the other way round.
func checkOrderTests() []test {
	return []test{
		{"NilContext", leaf(testNilContext)},
		{"EndedContext", leaf(testEndedContext)},
		{"ClosedBeforeArguments", leaf(testClosedBeforeArguments)},
	}
}

// call is one Store method with its arguments, valid or not.
type call struct {
	name string
	// watch marks Watch, which may also end quietly when its context has
	// ended (its iteration "just stops").
	watch bool
	// lifecycle marks a call of eventstore.Lifecycle, made only on
	// stores that implement it (see callsFor).
	lifecycle bool
	do        func(ctx context.Context, s eventstore.Store) error
}

// lifecycleCall is a call of eventstore.Lifecycle's.
func lifecycleCall(name string, do func(ctx context.Context, l eventstore.Lifecycle) error) call {
	return call{name: name, lifecycle: true, do: func(ctx context.Context, s eventstore.Store) error {
		return do(ctx, s.(eventstore.Lifecycle)) // callsFor keeps it for Lifecycles only
	}}
}

// callsFor keeps the calls s can take: the Lifecycle ones only when s
// implements it.
func callsFor(s eventstore.Store, calls []call) []call {
	if _, ok := s.(eventstore.Lifecycle); ok {
		return calls
	}
	var out []call
	for _, c := range calls {
		if !c.lifecycle {
			out = append(out, c)
		}
	}
	return out
}

// errYielded is what seqErr reports for an iterator that yielded an event
// before any error.
var errYielded = errors.New("testsuite: the iterator yielded an event before any error")

// seqErr returns the first error of seq, or errYielded if an event came
// first.
func seqErr(seq func(yield func(eventstore.Recorded, error) bool)) error {
	for r, err := range seq {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w (%s@%d)", errYielded, r.StreamID, r.Version)
	}
	return nil
}

// validCalls call every method with valid arguments, on a store prepared
// by prepareCalls. Called on an open store with a live context, the
// watches would wait: they are only made where a check must end them.
func validCalls() []call {
	return []call{
		{name: "Append", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "s", eventstore.Any, ev("t", "refused"))
			return err
		}},
		{name: "Append(empty batch)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "s", eventstore.Any)
			return err
		}},
		{name: "Read", do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Read(ctx, "s", eventstore.ReadOptions{}))
		}},
		{name: "Read(AllStreams, backwards)", do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{Backwards: true}))
		}},
		{name: "Watch(FromStart)", watch: true, do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}))
		}},
		{name: "Watch(AllStreams, FromEnd)", watch: true, do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromEnd()}))
		}},
		{name: "Info", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Info(ctx, "s")
			return err
		}},
		{name: "Info(AllStreams)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Info(ctx, eventstore.AllStreams)
			return err
		}},
		{name: "SaveSnapshot", do: func(ctx context.Context, s eventstore.Store) error {
			return s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 1, Data: []byte("refused")})
		}},
		{name: "LoadSnapshot", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.LoadSnapshot(ctx, "s", "")
			return err
		}},
		{name: "FindEvent", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.FindEvent(ctx, "e1")
			return err
		}},
		lifecycleCall("DeleteStream", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.DeleteStream(ctx, "s", eventstore.Any)
		}),
		lifecycleCall("TruncateStream", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.TruncateStream(ctx, "s", 2)
		}),
		lifecycleCall("DeleteSnapshots", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.DeleteSnapshots(ctx, "s", "")
		}),
	}
}

// invalidCalls call every method with arguments it must refuse.
func invalidCalls() []call {
	stream := func(id string) call {
		return call{name: fmt.Sprintf("Append(%q)", id), do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, id, eventstore.Any, ev("t", "refused"))
			return err
		}}
	}
	return []call{
		stream(""),
		stream(eventstore.AllStreams),
		stream("s\x00"),
		{name: "Append(empty batch, empty stream ID)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "", eventstore.Any)
			return err
		}},
		{name: "Append(undefined expected version)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "s", eventstore.ExpectedVersion(-3), ev("t", "refused"))
			return err
		}},
		{name: "Append(event without type)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "s", eventstore.Any, eventstore.Event{Data: []byte("refused")})
			return err
		}},
		{name: "Append(oversize event)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize+1)})
			return err
		}},
		{name: "Read(empty stream ID)", do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Read(ctx, "", eventstore.ReadOptions{}))
		}},
		{name: "Read(negative limit)", do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Read(ctx, "s", eventstore.ReadOptions{Limit: -1}))
		}},
		{name: "Read(stream prefix on a stream)", do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Read(ctx, "s", eventstore.ReadOptions{Filter: eventstore.Filter{StreamPrefix: "s"}}))
		}},
		{name: "Watch(empty stream ID)", watch: true, do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Watch(ctx, "", eventstore.WatchOptions{From: eventstore.FromStart()}))
		}},
		{name: "Watch(empty filter type)", watch: true, do: func(ctx context.Context, s eventstore.Store) error {
			return seqErr(s.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{Filter: eventstore.Filter{Types: []string{""}}}))
		}},
		{name: "Info(invalid UTF-8)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.Info(ctx, "\xff")
			return err
		}},
		{name: "SaveSnapshot(empty stream ID)", do: func(ctx context.Context, s eventstore.Store) error {
			return s.SaveSnapshot(ctx, eventstore.Snapshot{Version: 1})
		}},
		{name: "SaveSnapshot(version too large)", do: func(ctx context.Context, s eventstore.Store) error {
			return s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 1 << 63})
		}},
		{name: "LoadSnapshot(NUL in name)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.LoadSnapshot(ctx, "s", "a\x00")
			return err
		}},
		{name: "FindEvent(empty ID)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.FindEvent(ctx, "")
			return err
		}},
		{name: "FindEvent(too long)", do: func(ctx context.Context, s eventstore.Store) error {
			_, err := s.FindEvent(ctx, strings.Repeat("e", eventstore.MaxIDLength+1))
			return err
		}},
		lifecycleCall("DeleteStream(AllStreams)", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.DeleteStream(ctx, eventstore.AllStreams, eventstore.Any)
		}),
		lifecycleCall("DeleteStream(undefined expected version)", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.DeleteStream(ctx, "s", eventstore.ExpectedVersion(-3))
		}),
		lifecycleCall("TruncateStream(before 0)", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.TruncateStream(ctx, "s", 0)
		}),
		lifecycleCall("DeleteSnapshots(NUL in name)", func(ctx context.Context, l eventstore.Lifecycle) error {
			return l.DeleteSnapshots(ctx, "s", "a\x00")
		}),
	}
}

// prepareCalls stores what the valid calls refer to: stream "s" with one
// event, of ID "e1".
func prepareCalls(t *testing.T, s eventstore.Store) {
	t.Helper()
	mustAppend(t, s, "s", eventstore.NoStream, evID("e1", "t"))
}

// wantUntouched checks that the calls wrote nothing: "s" holds its one
// event and has no snapshot.
func wantUntouched(t *testing.T, s eventstore.Store) {
	t.Helper()
	if got := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}); len(got) != 1 {
		t.Errorf("store holds %d events after refused calls, want 1: %+v", len(got), got)
	}
	if _, err := s.LoadSnapshot(ctxTimeout(t), "s", ""); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot after a refused SaveSnapshot: %v, want ErrNotFound", err)
	}
}

// within makes c with ctx, and fails the test if it does not return within
// waitTimeout (a refused call must not wait) or panics (no input may
// panic a store).
func within(t *testing.T, ctx context.Context, s eventstore.Store, c call) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("testsuite: %s panicked: %v", c.name, p)
			}
		}()
		done <- c.do(ctx, s)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return within %v", c.name, waitTimeout)
		return nil
	}
}

// closeOrFail closes s and fails the test if Close fails.
func closeOrFail(t *testing.T, s eventstore.Store) {
	t.Helper()
	if err := closeWithin(t, s); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// testNilContext calls every method with a nil context, with valid and
// invalid arguments, on an open store and then on a closed one: each
// answers a *ValidationError, without panicking, and writes nothing.
func testNilContext(t *testing.T, s eventstore.Store) {
	prepareCalls(t, s)
	var nilCtx context.Context // a nil interface, as a careless caller passes it
	calls := callsFor(s, append(validCalls(), invalidCalls()...))
	for _, c := range calls {
		wantValidation(t, c.name+" with a nil context", within(t, nilCtx, s, c))
	}
	wantUntouched(t, s)
	closeOrFail(t, s)
	for _, c := range calls {
		wantValidation(t, c.name+" with a nil context on a closed store", within(t, nilCtx, s, c))
	}
}

// testEndedContext calls every method with an ended context: with invalid
// arguments on an open store, and with any arguments on a closed store,
// the answer is the context's error (the context is checked first). A
// watch may instead end quietly, as it does when its context ends.
func testEndedContext(t *testing.T, s eventstore.Store) {
	prepareCalls(t, s)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	ended := []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"a cancelled context", cancelled, context.Canceled},
		{"a context past its deadline", expired, context.DeadlineExceeded},
	}
	check := func(c call, ctx context.Context, want error, what string) {
		t.Helper()
		err := within(t, ctx, s, c)
		if c.watch && err == nil {
			return
		}
		if !errors.Is(err, want) {
			t.Errorf("%s with %s: error %v, want errors.Is(err, %v)", c.name, what, err, want)
		}
	}
	for _, e := range ended {
		for _, c := range callsFor(s, invalidCalls()) {
			check(c, e.ctx, e.err, e.name)
		}
	}
	wantUntouched(t, s)
	closeOrFail(t, s)
	for _, e := range ended {
		for _, c := range callsFor(s, append(validCalls(), invalidCalls()...)) {
			check(c, e.ctx, e.err, e.name+" on a closed store")
		}
	}
}

// testClosedBeforeArguments calls every method with invalid arguments on
// a closed store: each answers ErrClosed, not a *ValidationError.
func testClosedBeforeArguments(t *testing.T, s eventstore.Store) {
	prepareCalls(t, s)
	closeOrFail(t, s)
	ctx := ctxTimeout(t)
	for _, c := range callsFor(s, invalidCalls()) {
		err := within(t, ctx, s, c)
		wantErr(t, c.name+" on a closed store", err, eventstore.ErrClosed)
		if errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("%s on a closed store: %v also matches ErrInvalidInput", c.name, err)
		}
	}
}
