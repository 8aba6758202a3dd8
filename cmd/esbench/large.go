package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// Large events (issue 9 item 3): a stream of largeEvents events of
// largeSize bytes each, read whole (read_large) and caught up on by a watch
// (watch_large). The figure that matters is the peak RSS of a child process
// doing only that, over its own baseline: pages sized in rows alone held
// hundreds of these events at once (922 MB for a read, 1.08 GB for a watch,
// at 1,200 events of 1 MiB).
const (
	defaultLargeEvents = 1200
	defaultLargeSize   = 1 << 20 // the default eventstore.DefaultMaxEventSize
	largeBatch         = 8       // events per Append while writing the stream
	largeRSSSlackMB    = 64      // the bound, over the baseline plus one event
)

// largeStreamOnce appends the large stream, once per run, for whichever of
// read_large and watch_large comes first.
func (b *bench) largeStreamOnce(ctx context.Context) error {
	if b.largeStream != "" {
		return nil
	}
	cfg := b.cfg
	cfg.logf("large events: appending %d events of %d bytes", cfg.largeEvents, cfg.largeSize)
	stream := "large-" + b.id
	data := make([]byte, cfg.largeSize)
	_, _ = rand.Read(data) // incompressible, as PostgreSQL's TOAST would otherwise shrink it
	evs := make([]eventstore.Event, largeBatch)
	for i := range evs {
		evs[i] = eventstore.Event{Type: "large", Data: data}
	}
	for n := 0; n < cfg.largeEvents; n += largeBatch {
		k := min(largeBatch, cfg.largeEvents-n)
		if _, err := b.env.store.Append(ctx, stream, eventstore.Exact(uint64(n)), evs[:k]...); err != nil {
			return fmt.Errorf("large events: append: %w", err)
		}
	}
	b.largeStream = stream
	return nil
}

// readLarge times one whole read of the large stream by each side, then
// measures the peak RSS of a library read and of a driver read, each in a
// child process.
func (b *bench) readLarge(ctx context.Context) error {
	if err := b.largeStreamOnce(ctx); err != nil {
		return err
	}
	cfg := b.cfg
	cfg.logf("read_large: %d events of %d bytes", cfg.largeEvents, cfg.largeSize)
	lib := func() error {
		n := 0
		for r, err := range b.env.store.Read(ctx, b.largeStream, eventstore.ReadOptions{}) {
			if err != nil {
				return err
			}
			if len(r.Data) != cfg.largeSize {
				return fmt.Errorf("event %d has %d bytes, want %d", r.Version, len(r.Data), cfg.largeSize)
			}
			n++
		}
		return countErr(n, cfg.largeEvents, nil)
	}
	return b.large(ctx, "read_large", "read", lib)
}

// watchLarge is readLarge for a watch from the start that catches up over
// the whole stream.
func (b *bench) watchLarge(ctx context.Context) error {
	if err := b.largeStreamOnce(ctx); err != nil {
		return err
	}
	cfg := b.cfg
	cfg.logf("watch_large: catching up over %d events of %d bytes", cfg.largeEvents, cfg.largeSize)
	lib := func() error {
		_, err := watchCount(ctx, b.env.store, b.largeStream, cfg.largeEvents)
		return err
	}
	return b.large(ctx, "watch_large", "watch", lib)
}

// large times lib against the driver's read of the large stream (once
// each, alternating nothing: the figures are the RSS), then runs childOp
// and the driver's read in child processes.
func (b *bench) large(ctx context.Context, op, childOp string, lib func() error) error {
	cfg := b.cfg
	t := time.Now()
	if err := lib(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	libT := time.Since(t)
	t = time.Now()
	n, err := b.env.drv.read(ctx, b.largeStream, 1, func(uint64, string, []byte) error { return nil })
	if err = countErr(n, cfg.largeEvents, err); err != nil {
		return fmt.Errorf("%s: driver: %w", op, err)
	}
	drvT := time.Since(t)
	r := b.result(op, cfg.largeEvents, perSecond(cfg.largeEvents, libT), perSecond(cfg.largeEvents, drvT))
	if cfg.childRSS {
		lib, err := runChild(ctx, b.env.childEnv, childOp, b.largeStream, cfg.largeEvents)
		if err != nil {
			return fmt.Errorf("%s: child: %w", op, err)
		}
		drv, err := runChild(ctx, b.env.childEnv, "driver-read", b.largeStream, cfg.largeEvents)
		if err != nil {
			return fmt.Errorf("%s: driver child: %w", op, err)
		}
		r.PeakRSSMB, r.RSSScope = lib.peakMB, "child process doing only this operation over the whole stream"
		r.BaselineRSSMB, r.DriverPeakRSSMB = &lib.baselineMB, &drv.peakMB
		bound := largeRSSSlackMB + float64(cfg.largeSize)/(1<<20)
		r.Target = fmt.Sprintf("peak_rss_mb - baseline_rss_mb <= %g (64 MB plus one event)", bound)
		r.Met = lib.peakMB-lib.baselineMB <= bound
	}
	b.emit(r)
	return nil
}

// watchCount watches stream from its start until it has seen want events,
// then stops the watch; it returns the events' total size.
func watchCount(ctx context.Context, s eventstore.Store, stream string, want int) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, size := 0, 0
	for r, err := range s.Watch(ctx, stream, eventstore.WatchOptions{From: eventstore.FromStart()}) {
		if err != nil {
			return size, err
		}
		if r.Version != uint64(n+1) {
			return size, fmt.Errorf("watch yielded version %d after %d", r.Version, n)
		}
		n++
		size += len(r.Data)
		if n == want {
			return size, nil
		}
	}
	return size, fmt.Errorf("watch ended after %d of %d events", n, want)
}
