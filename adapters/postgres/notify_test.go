package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// TestOwnAppendsNotReportedAsOthers: the store's own appends are never
// reported to the front as appends of others (which wakes every watcher
// of the store, not only those of the streams written), even once the
// listener has received the appends' own NOTIFYs; another store's append
// is. The front wakes the watchers of its own appends itself: a watch of
// the stream written sees them all.
func TestOwnAppendsNotReportedAsOthers(t *testing.T) {
	schema := freshSchema(t)
	// A NOTIFY per commit, to count them.
	s := openStore(t, schema, WithoutPoll(), WithNotifyInterval(0))
	waitListening(t, s)
	w := startWatch(t, s, "a", eventstore.WatchOptions{From: eventstore.FromStart()})

	const appends = 20
	notes, changes := s.d.notes.Load(), s.d.changes.Load()
	for i := range appends {
		if _, err := s.Append(t.Context(), "a", eventstore.Exact(uint64(i)), evt("x")); err != nil {
			t.Fatal(err)
		}
		waitAnnounced(t, s) // one NOTIFY each, none coalesced
	}
	w.next(t, appends)
	waitFor(t, "the listener to receive the appends' notifications", func() (bool, error) {
		return s.d.notes.Load() >= notes+appends, nil
	})
	if got := s.d.changes.Load(); got != changes {
		t.Fatalf("%d own appends reported %d changes by others, want none", appends, got-changes)
	}

	other := openStore(t, schema, WithoutListen(), WithoutPoll())
	if _, err := other.Append(t.Context(), "c", eventstore.Any, evt("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "another store's append reported", func() (bool, error) {
		return s.d.changes.Load() > changes, nil
	})
}

// waitListening waits until s's listener has (re)subscribed.
func waitListening(t *testing.T, s *Store) {
	t.Helper()
	select {
	case <-s.d.listening:
	case <-time.After(waitTimeout):
		t.Fatalf("listener not subscribed within %v", waitTimeout)
	}
}

// TestNotifyAfterCommit: the store's NOTIFY, sent after its COMMIT in a
// transaction of its own (see announcer), carries the last position of
// the groups that stored events, at once after a quiet moment and then at
// most once per WithNotifyInterval, and none for a group that stored
// nothing.
func TestNotifyAfterCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		appends  []int // events per append; 0: a conflict, which stores none
		want     []int // the appends (1-based) whose position a NOTIFY carries
	}{
		{"EveryCommit", 0, []int{3, 1, 0}, []int{1, 2}},
		{"Coalesced", time.Second, []int{3, 1, 2, 0}, []int{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, WithoutListen(), WithoutPoll(), WithNotifyInterval(tc.interval))
			ctx := t.Context()
			conn, err := pgx.Connect(ctx, testDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.d.channel}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			var positions []string
			for _, n := range tc.appends {
				if n == 0 {
					if _, err := s.Append(ctx, "s", eventstore.NoStream, evt("x")); !errors.Is(err, eventstore.ErrConcurrency) {
						t.Fatalf("append expecting no stream: %v, want a conflict", err)
					}
					positions = append(positions, "")
					continue
				}
				events := make([]eventstore.Event, n)
				for i := range events {
					events[i] = evt("x")
				}
				res, err := s.Append(ctx, "s", eventstore.Any, events...)
				if err != nil {
					t.Fatal(err)
				}
				positions = append(positions, strconv.FormatUint(res.Position, 10))
				if len(positions) == 1 || tc.interval == 0 {
					// Sent before the next append: the first at once, and
					// with no interval each; the later ones of the
					// interval share one.
					waitAnnounced(t, s)
				}
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, positions[i-1])
			}
			var got []string
			for {
				wctx, cancel := context.WithTimeout(ctx, tc.interval+500*time.Millisecond)
				n, err := conn.WaitForNotification(wctx)
				cancel()
				if err != nil {
					break
				}
				got = append(got, n.Payload)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
		})
	}
}
