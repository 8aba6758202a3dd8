package subscription_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// errConnLost stands for a database error a retry gets past: a connection
// terminated by the server, say.
var errConnLost = errors.New("connection to the database lost")

// faultyBackend is the reference backend with faults of a database whose
// connections are terminated: Register fails the first registerFaults
// times, and a Commit with a handler function commits and then reports
// errConnLost the first afterCommitFaults times (the connection lost
// while COMMIT's answer was on its way: the outcome is unknown to the
// member). It records the events whose handler's work was committed.
type faultyBackend struct {
	subscription.Backend[tx]
	mu                                sync.Mutex
	registerFaults, afterCommitFaults int
	applied                           map[uint64]int // position -> committed applications
}

func (f *faultyBackend) Register(ctx context.Context, name string, n int, start uint64) (int, error) {
	f.mu.Lock()
	fail := f.registerFaults > 0
	f.registerFaults--
	f.mu.Unlock()
	if fail {
		return 0, errConnLost
	}
	return f.Backend.Register(ctx, name, n, start)
}

func (f *faultyBackend) Commit(ctx context.Context, name, member string, cps []subscription.Lease, fn func(ctx context.Context, t tx) error) error {
	if fn == nil {
		return f.Backend.Commit(ctx, name, member, cps, nil)
	}
	var pending []eventstore.Recorded
	err := f.Backend.Commit(ctx, name, member, cps, func(ctx context.Context, t tx) error {
		return fn(context.WithValue(ctx, pendingKey{}, &pending), t)
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range pending {
		f.applied[e.Position]++
	}
	if f.afterCommitFaults > 0 {
		f.afterCommitFaults--
		return errConnLost
	}
	return nil
}

// pendingKey carries, in a transactional handler's context, where it
// notes the events it applied in the transaction.
type pendingKey struct{}

type faultyStore struct {
	*memStore
	b *faultyBackend
}

func (s *faultyStore) Subscriptions() subscription.Backend[tx] { return s.b }

func newFaultyStore(t *testing.T, registerFaults, afterCommitFaults int) *faultyStore {
	t.Helper()
	m := newStore(t)
	return &faultyStore{memStore: m, b: &faultyBackend{Backend: m.b, registerFaults: registerFaults, afterCommitFaults: afterCommitFaults, applied: map[uint64]int{}}}
}

// TestRunRetriesRegister: Run's documentation says a database error does
// not end it; one met while registering (the torture run's consumers
// met "register subscription: connection to the database lost" when
// their connections were terminated) must be tried again too.
func TestRunRetriesRegister(t *testing.T) {
	s := newFaultyStore(t, 1, 0)
	last := appendN(t, s, "a", 3, "t")
	var rec recorder
	sub, err := subscription.New(s, "sub", rec.handle, subscription.WithRetries(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	waited := make(chan error, 1)
	go func() { waited <- sub.WaitFor(ctx, last) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v after a failed Register, want it to try again", err)
	case err := <-waited:
		if err != nil {
			t.Fatalf("WaitFor: %v; status %+v", err, sub.Status())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestTxCommitUnknownOutcomeNotReapplied: when the answer to a
// transactional batch's COMMIT is lost (the connection is terminated
// after the server committed), the batch must not be applied a second
// time: the read model and the checkpoint committed together, so a
// retry that runs the handler again and commits again applies every
// event of the batch twice. NewTx promises an effect exactly once.
func TestTxCommitUnknownOutcomeNotReapplied(t *testing.T) {
	s := newFaultyStore(t, 0, 1)
	last := appendN(t, s, "a", 5, "t")
	sub, err := subscription.NewTx(s, "rm", func(ctx context.Context, _ tx, events []eventstore.Recorded) error {
		if p, ok := ctx.Value(pendingKey{}).(*[]eventstore.Recorded); ok {
			*p = append(*p, events...)
		}
		return nil
	}, subscription.WithRetries(3, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start(t, sub)
	waitFor(t, sub, last)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	for pos := uint64(1); pos <= last; pos++ {
		if n := s.b.applied[pos]; n != 1 {
			t.Errorf("event at position %d applied %d times in committed transactions, want 1", pos, n)
		}
	}
}
