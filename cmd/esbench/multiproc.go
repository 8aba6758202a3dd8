package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// mpProcs is the number of processes of append_multiprocess.
const mpProcs = 4

// appendMultiprocess (append_multiprocess, PostgreSQL only, issue 13
// item 4) measures what running several application instances costs the
// writes: mpProcs child processes of cfg.writers/mpProcs goroutines each
// append single events to streams of their own, cfg.mpPer appends per
// goroutine; the driver side is this one process doing as many appends
// with cfg.writers goroutines. Both sides run twice, alternating which
// goes first. The ratio is the processes' rate over the one process's;
// the target is 0.8.
func (b *bench) appendMultiprocess(ctx context.Context) error {
	if b.env.name != "postgres" {
		return nil
	}
	cfg := b.cfg
	per := max(cfg.writers/mpProcs, 1)
	cfg.logf("append_multiprocess: %d processes × %d goroutines against 1 × %d, %d appends per goroutine", mpProcs, per, per*mpProcs, cfg.mpPer)
	_, data, err := counterEvents(1)
	if err != nil {
		return err
	}
	ev := eventstore.Event{Type: typeAdded, Data: data[0]}
	var multiT, oneT time.Duration
	for round := range 2 {
		multi := func() error {
			_, took, err := b.runStarted(ctx, mpProcs, "append-mp",
				"ESBENCH_MP_PREFIX="+fmt.Sprintf("mp-%s-%d-", b.id, round),
				"ESBENCH_MP_WRITERS="+strconv.Itoa(per), "ESBENCH_MP_PER="+strconv.Itoa(cfg.mpPer))
			multiT += took
			return err
		}
		one := func() error {
			versions := make([]uint64, per*mpProcs)
			d, _, err := concurrently(ctx, per*mpProcs, cfg.mpPer, func(g int) error {
				_, err := b.env.store.Append(ctx, fmt.Sprintf("mp1-%s-%d-%d", b.id, round, g), eventstore.Exact(versions[g]), ev)
				versions[g]++
				return err
			})
			oneT += d
			return err
		}
		if err := alternate(round, multi, one); err != nil {
			return fmt.Errorf("append_multiprocess: %w", err)
		}
	}
	total := 2 * per * mpProcs * cfg.mpPer
	r := b.result("append_multiprocess", total, perSecond(total, multiT), perSecond(total, oneT))
	r.Count = total
	r.Target, r.Met = atLeast(r.Ratio, 0.8)
	b.emit(r)
	return nil
}

// mpMember is a child of append_multiprocess: ESBENCH_MP_WRITERS
// goroutines appending ESBENCH_MP_PER single events each to streams
// ESBENCH_MP_PREFIX<pid>-<g>, started by a line on stdin.
func mpMember(ctx context.Context) (err error) {
	writers, err := strconv.Atoi(os.Getenv("ESBENCH_MP_WRITERS"))
	if err != nil {
		return fmt.Errorf("ESBENCH_MP_WRITERS: %w", err)
	}
	per, err := strconv.Atoi(os.Getenv("ESBENCH_MP_PER"))
	if err != nil {
		return fmt.Errorf("ESBENCH_MP_PER: %w", err)
	}
	prefix := os.Getenv("ESBENCH_MP_PREFIX") + strconv.Itoa(os.Getpid()) + "-"
	e, err := openChild(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.cleanup()) }()
	_, data, err := counterEvents(1)
	if err != nil {
		return err
	}
	ev := eventstore.Event{Type: typeAdded, Data: data[0]}
	// A connection open and the code warm before the start.
	if _, err := e.store.Info(ctx, prefix+"0"); err != nil {
		return err
	}
	if err := waitStart(); err != nil {
		return err
	}
	versions := make([]uint64, writers)
	_, _, err = concurrently(ctx, writers, per, func(g int) error {
		_, err := e.store.Append(ctx, prefix+strconv.Itoa(g), eventstore.Exact(versions[g]), ev)
		versions[g]++
		return err
	})
	return err
}
