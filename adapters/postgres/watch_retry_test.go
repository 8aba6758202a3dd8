package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// TestWatchSurvivesTerminatedConnections terminates every server
// connection of a watching store, several times, while another store
// appends: one uninterrupted watch of a stream and one of all streams
// still see every event once, in order, and end with no error. Before
// watches retried a lost connection, each termination ended them with
// "terminating connection due to administrator command".
func TestWatchSurvivesTerminatedConnections(t *testing.T) {
	s, schema := faultStore(t, "", WithPollInterval(50*time.Millisecond))
	writer := openStore(t, schema)
	admin := adminConn(t)
	ctx := ctxT(t)

	const rounds, per = 4, 3
	want := rounds * per
	type result struct {
		positions []uint64
		err       error
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := func(stream string, n int, out chan<- result) {
		var r result
		for rec, err := range s.Watch(wctx, stream, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				r.err = err
				break
			}
			r.positions = append(r.positions, rec.Position)
			if len(r.positions) == n {
				break
			}
		}
		out <- r
	}
	streamDone, allDone := make(chan result, 1), make(chan result, 1)
	go watch("s", want, streamDone)
	go watch(eventstore.AllStreams, want, allDone)

	terminated := 0
	for range rounds {
		for range per {
			if _, err := writer.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		terminated += terminate(t, admin, schema, "")
	}
	if terminated == 0 {
		t.Fatal("no connection of the watching store was terminated")
	}
	wantPos := make([]uint64, want)
	for i := range wantPos {
		wantPos[i] = uint64(i + 1)
	}
	for name, ch := range map[string]chan result{"s": streamDone, "$all": allDone} {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Errorf("watch of %s ended with %v after %d events", name, r.err, len(r.positions))
			}
			if diff := cmp.Diff(wantPos, r.positions); diff != "" {
				t.Errorf("watch of %s: positions (-want +got):\n%s", name, diff)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("watch of %s did not see all %d events", name, want)
		}
	}
	t.Logf("%d connections terminated", terminated)
}

// TestConnectionLost: the errors of a lost connection, and only those,
// are told apart (connectionLost) and marked for the front with
// driver.ErrConnectionLost (callErr), which makes a watch read its page
// again; the database's error stays reachable.
func TestConnectionLost(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"ConnectionFailure", &pgconn.PgError{Code: "08006"}, true},
		{"CannotConnectNow", &pgconn.PgError{Code: "57P03"}, true},
		{"UnexpectedEOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"UniqueViolation", &pgconn.PgError{Code: "23505"}, false},
		{"StatementTimeout", &pgconn.PgError{Code: "57014"}, false},
		{"Closed", eventstore.ErrClosed, false},
		{"Canceled", context.Canceled, false},
		{"Plain", errors.New("boom"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := connectionLost(translateError(c.err, opErr("read"))); got != c.want {
				t.Errorf("connectionLost(%v) = %v, want %v", c.err, got, c.want)
			}
			err := (&pgDriver{}).callErr(t.Context(), c.err, "read")
			if got := errors.Is(err, driver.ErrConnectionLost); got != c.want {
				t.Errorf("callErr(%v) = %v: wraps ErrConnectionLost %v, want %v", c.err, err, got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("callErr(%v) = %v, which does not wrap it", c.err, err)
			}
		})
	}
}
