package subscription_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
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

func (b *syncLog) count(level, msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, "level="+level+" ") && strings.Contains(l, `msg="`+msg+`"`) {
			n++
		}
	}
	return n
}

func (b *syncLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLoggingAndHooks: a failing handler's retries are logged at Debug,
// the error that stops Run at Error, a parked event at Warn; the Batch
// hook sees every call with its attempt number and gives the handler its
// context, and the Parked hook each parked event (issue 14).
func TestLoggingAndHooks(t *testing.T) {
	boom := errors.New("boom")
	type ctxKey struct{}
	for _, policy := range []subscription.Policy{subscription.Stop, subscription.Park} {
		t.Run(policy.String(), func(t *testing.T) {
			s := newStore(t)
			last := appendN(t, s, "a", 2, "t")
			var buf syncLog
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var mu sync.Mutex
			var attempts []int
			var parked []uint64
			var doneErrs int
			hooks := subscription.Hooks{
				Batch: func(ctx context.Context, b subscription.BatchInfo) (context.Context, func(error)) {
					mu.Lock()
					attempts = append(attempts, b.Attempt)
					mu.Unlock()
					return context.WithValue(ctx, ctxKey{}, "hooked"), func(err error) {
						if errors.Is(err, boom) {
							mu.Lock()
							doneErrs++
							mu.Unlock()
						}
					}
				},
				Parked: func(_ context.Context, name string, e eventstore.Recorded, err error) {
					mu.Lock()
					defer mu.Unlock()
					if name == "s" && errors.Is(err, boom) {
						parked = append(parked, e.Position)
					}
				},
			}
			sub, err := subscription.New(s, "s", func(ctx context.Context, _ []eventstore.Recorded) error {
				if ctx.Value(ctxKey{}) != "hooked" {
					t.Error("the handler did not get the Batch hook's context")
				}
				return boom
			}, subscription.WithLogger(logger), subscription.WithHooks(hooks), subscription.WithPolicy(policy),
				subscription.WithRetries(1, time.Millisecond, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if policy == subscription.Stop {
				var he *subscription.HandlerError
				if err := sub.Run(ctx); !errors.As(err, &he) {
					t.Fatalf("Run: %v, want a *HandlerError", err)
				}
				if got := buf.count("DEBUG", "esv2: subscription handler failed, retrying"); got != 1 {
					t.Errorf("%d retry lines, want 1; log:\n%s", got, buf.String())
				}
				if got := buf.count("ERROR", "esv2: subscription stopped"); got != 1 {
					t.Errorf("%d stop lines, want 1; log:\n%s", got, buf.String())
				}
				mu.Lock()
				defer mu.Unlock()
				if len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 || doneErrs != 2 {
					t.Errorf("Batch hook saw attempts %v and %d failures, want [1 2] and 2", attempts, doneErrs)
				}
				return
			}
			stop := start(t, sub)
			waitFor(t, sub, last)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := buf.count("WARN", "esv2: subscription parked an event"); got != 2 {
				t.Errorf("%d park lines, want 2; log:\n%s", got, buf.String())
			}
			if got := buf.count("ERROR", "esv2: subscription stopped"); got != 0 {
				t.Errorf("%d stop lines for a Run ended by its context, want 0", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(parked) != 2 || parked[1] != last {
				t.Errorf("Parked hook saw %v, want two events ending at %d", parked, last)
			}
		})
	}
}
