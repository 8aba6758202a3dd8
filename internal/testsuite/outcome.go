package testsuite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// endingContext is a context that ends (with context.Canceled) once it
// has been consulted (Err or Done called) more than looks times. A store
// consults its context at the points where cancellation can change what it
// does: swept over looks, the context ends at each of them in turn, one of
// which lies after the store took the append, which no timer could hit
// reliably. Values and the deadline come from context.Background.
type endingContext struct {
	context.Context
	looks int64
	seen  atomic.Int64
	once  sync.Once
	done  chan struct{}
}

func newEndingContext(looks int64) *endingContext {
	return &endingContext{Context: context.Background(), looks: looks, done: make(chan struct{})}
}

// look counts one consultation and reports whether the context has ended.
func (c *endingContext) look() bool {
	if c.seen.Add(1) > c.looks {
		c.once.Do(func() { close(c.done) })
		return true
	}
	return false
}

func (c *endingContext) Done() <-chan struct{} {
	c.look()
	return c.done
}

func (c *endingContext) Err() error {
	if c.look() {
		return context.Canceled
	}
	return nil
}

// contextSweep is how many consultations of its context the
// ContextEndsDuringAppend case lets an append make before the context
// ends, at most; an append that consults it fewer times just succeeds.
const contextSweep = 40

// testAppendContextEnds appends with contexts that end at every point of
// the append in turn (the first to the 40th time the store consults
// them), and checks that each answer tells the truth (issue 10): an
// append whose context ends while it waits to be taken returns the
// context's error and writes nothing, and one whose context ends after
// the store took it returns its real outcome. PostgreSQL used to answer
// ctx.Err() for an append its writer had already taken, and stored it.
// So a nil error means the batch is stored once, context.Canceled that
// nothing is, ErrUnknownOutcome (a lost connection) that it is stored at
// most once; and a context that has ended before the call is refused.
func testAppendContextEnds(t *testing.T, s eventstore.Store) {
	type attempt struct {
		looks int64
		res   eventstore.AppendResult
		err   error
	}
	attempts := make([]attempt, 0, contextSweep+1)
	for looks := range int64(contextSweep + 1) {
		ctx := newEndingContext(looks)
		done := make(chan attempt, 1)
		go func() {
			batch := []eventstore.Event{ev("t", fmt.Sprint(looks, "a")), ev("t", fmt.Sprint(looks, "b"))}
			res, err := s.Append(ctx, "s", eventstore.Any, batch...)
			done <- attempt{looks, res, err}
		}()
		select {
		case a := <-done:
			attempts = append(attempts, a)
		case <-time.After(waitTimeout):
			t.Fatalf("Append with a context that ends after %d consultations did not return within %v", looks, waitTimeout)
		}
	}
	stored := make(map[string][]eventstore.Recorded) // by data
	for _, r := range readAll(t, s, "s", eventstore.ReadOptions{}) {
		stored[string(r.Data)] = append(stored[string(r.Data)], r)
	}
	for _, a := range attempts {
		first, second := stored[fmt.Sprint(a.looks, "a")], stored[fmt.Sprint(a.looks, "b")]
		what := fmt.Sprintf("Append with a context that ends after %d consultations", a.looks)
		switch {
		case a.err == nil:
			if len(first) != 1 || len(second) != 1 {
				t.Errorf("%s succeeded (%+v), but its events are stored %d and %d times, want once", what, a.res, len(first), len(second))
				continue
			}
			if a.res.Appended != 2 || a.res.Version != second[0].Version || a.res.Position != second[0].Position || first[0].Version+1 != second[0].Version {
				t.Errorf("%s: result %+v, but its events are stored at versions %d, %d and positions %d, %d",
					what, a.res, first[0].Version, second[0].Version, first[0].Position, second[0].Position)
			}
		case errors.Is(a.err, context.Canceled):
			if len(first)+len(second) != 0 {
				t.Errorf("%s returned %v, but its events are stored (%d and %d times): an error from Append other than ErrUnknownOutcome must mean nothing was written",
					what, a.err, len(first), len(second))
			}
		case errors.Is(a.err, eventstore.ErrUnknownOutcome):
			if len(first) > 1 || len(first) != len(second) {
				t.Errorf("%s returned %v, and its events are stored %d and %d times, want both once or neither", what, a.err, len(first), len(second))
			}
		default:
			t.Errorf("%s: %v, want success, context.Canceled or ErrUnknownOutcome", what, a.err)
		}
	}
	if err := attempts[0].err; !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a context that had ended: %v, want context.Canceled", err)
	}
	// The store still works.
	mustAppend(t, s, "s", eventstore.Any, ev("t", "after"))
}
