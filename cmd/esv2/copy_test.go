package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
)

// TestCopySQLiteToPostgres exports a large SQLite store, imports it into
// PostgreSQL, cancels that import halfway through (in the middle of a
// batch, appends in flight) and runs it again: then verify passes on both
// sides and every stream reads back equal.
func TestCopySQLiteToPostgres(t *testing.T) {
	schema := pgtest.FreshSchema(t, "esv2cli_copy_")
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	const streams = copyStreams
	perStream := copyEvents / streams

	path := filepath.Join(t.TempDir(), "big.db")
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	start := time.Now()
	// Two rounds, so that each stream's events are in two runs of the
	// log; appends run concurrently for group commit.
	base := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	for round := range 2 {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for s := range streams {
			g.Go(func() error {
				id := fmt.Sprintf("stream-%04d", s)
				var evs []eventstore.Event
				for i := range perStream / 2 {
					v := round*(perStream/2) + i + 1
					e := eventstore.Event{Type: "Counted", Time: base.Add(time.Duration(v) * time.Second)}
					if v%2 == 0 {
						e.ID = fmt.Sprintf("%s/%d", id, v)
						e.Data, _ = msgpack.Marshal(map[string]any{"n": v, "s": id})
						e.Metadata = map[string]string{"tenant": fmt.Sprint(s % 7)}
					} else {
						e.Data = fmt.Appendf(nil, `{"n":%d}`, v)
					}
					evs = append(evs, e)
				}
				_, err := src.Append(gctx, id, eventstore.Exact(uint64(round*(perStream/2))), evs...)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("seeded %d events: %v", copyEvents, time.Since(start))
	var dump bytes.Buffer
	n, err := exportEvents(ctx, src, &dump, eventstore.Filter{}, 0, copyEvents, func(uint64) {})
	if err != nil || n != copyEvents {
		t.Fatalf("export: %d events, %v; want %d", n, err, copyEvents)
	}

	dst, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMigrate(), postgres.WithoutListen())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst.Close() })

	// The first run is cancelled at an append in the middle of the
	// import, with other appends of its batch in flight.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cut := &cancelAt{Store: dst, at: streams, cancel: cancel}
	first := &importer{store: cut, batch: 2000, workers: 32}
	st1, err := first.run(cctx, bytes.NewReader(dump.Bytes()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v, want context.Canceled", err)
	}
	if st1.Appended == 0 || st1.Appended >= copyEvents {
		t.Fatalf("interrupted import appended %d events, want some but not all of %d", st1.Appended, copyEvents)
	}
	second := &importer{store: dst, batch: 2000, workers: 32}
	st2, err := second.run(ctx, bytes.NewReader(dump.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// An append cancelled after it was sent may have been stored all the
	// same: the second run skips it without the first having counted it.
	t.Logf("imported (twice): %v", time.Since(start))
	if st2.Skipped < st1.Appended || st2.Skipped+st2.Appended != copyEvents || st2.Streams != streams {
		t.Fatalf("resumed import: %+v after %+v, want the rest of %d events in %d streams", st2, st1, copyEvents, streams)
	}

	// verify passes on both stores, run as a user runs it.
	for _, argv := range [][]string{{"--db", path, "verify"}, {"--dsn", dsn, "--schema", schema, "verify"}} {
		var out, errOut bytes.Buffer
		if code := run(argv, strings.NewReader(""), &out, &errOut); code != exitOK || !strings.HasPrefix(out.String(), "ok: ") {
			t.Errorf("esv2 %s: exit status %d, stdout %q, stderr %q", strings.Join(argv, " "), code, out.String(), errOut.String())
		}
	}

	t.Logf("verified: %v", time.Since(start))
	// Every stream, read whole from each side in one pass over the log.
	want, got := streamsOf(t, src), streamsOf(t, dst)
	if len(want) != streams {
		t.Fatalf("source has %d streams, want %d", len(want), streams)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("streams differ after the copy (-sqlite +postgres):\n%s", diff)
	}
}

// streamsOf reads a store's log and returns each stream's events with
// their positions zeroed: positions are each store's own, the rest of an
// event must survive a copy.
func streamsOf(t *testing.T, s eventstore.Store) map[string][]eventstore.Recorded {
	t.Helper()
	out := make(map[string][]eventstore.Recorded)
	for r, err := range s.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		r.Position = 0
		out[r.StreamID] = append(out[r.StreamID], r)
	}
	return out
}

// cancelAt cancels the import's context when its at-th append begins.
type cancelAt struct {
	eventstore.Store
	n      atomic.Int64
	at     int64
	cancel context.CancelFunc
}

func (c *cancelAt) Append(ctx context.Context, id string, exp eventstore.ExpectedVersion, evs ...eventstore.Event) (eventstore.AppendResult, error) {
	if c.n.Add(1) == c.at {
		c.cancel()
	}
	return c.Store.Append(ctx, id, exp, evs...)
}
