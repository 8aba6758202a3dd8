package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// watchLatency runs two rounds per side, alternating library and driver:
// each round starts cfg.watchers watchers on cfg.watchStreams fresh
// streams, appends one event to each stream so that every watcher is
// known to be live, then appends watchPer events per stream, one at a
// time, every watchEvery, round robin over the streams, and records when
// each watcher receives each event. A latency is receipt time minus the
// time the append returned (0 when the watcher was faster than Append's
// return).
func (b *bench) watchLatency(ctx context.Context) error {
	cfg := b.cfg
	cfg.logf("watch_latency: %d watchers on %d streams, %d appends per side", cfg.watchers, cfg.watchStreams, 2*cfg.watchPer*cfg.watchStreams)
	var lib, drv []time.Duration
	var libT, drvT time.Duration
	for round := range 2 {
		libRound := func() error {
			prefix := fmt.Sprintf("watch-%s-lib-%d-", b.id, round)
			lat, d, err := b.watchRound(ctx, prefix, b.libWatcher(prefix), func(ctx context.Context, stream string, v uint64) error {
				_, err := b.env.store.Append(ctx, stream, eventstore.Exact(v), eventstore.Event{Type: typeAdded, Data: []byte{0x80}})
				return err
			})
			lib, libT = append(lib, lat...), libT+d
			return err
		}
		drvRound := func() error {
			prefix := fmt.Sprintf("watch-%s-drv-%d-", b.id, round)
			wake := newWakers(cfg.watchStreams)
			lat, d, err := b.watchRound(ctx, prefix, b.drvWatcher(prefix, wake), func(ctx context.Context, stream string, _ uint64) error {
				err := b.env.drv.appendOne(ctx, stream, typeAdded, []byte{0x80})
				if err == nil {
					wake.notify(streamIndex(prefix, stream))
				}
				return err
			})
			drv, drvT = append(drv, lat...), drvT+d
			return err
		}
		if err := alternate(round, libRound, drvRound); err != nil {
			return fmt.Errorf("watch_latency: %w", err)
		}
	}
	lp50, lp99 := percentiles(lib)
	dp50, dp99 := percentiles(drv)
	// Rates: deliveries per second of wall time, which the pace of the
	// appender mostly sets; the latencies are the figures that matter.
	r := b.result("watch_latency", 2*cfg.watchPer*cfg.watchStreams, perSecond(len(lib), libT), perSecond(len(drv), drvT))
	r.Count = len(lib)
	setLatency(&r, lp50, lp99, dp50, dp99)
	want := 5.0
	if b.env.name == "postgres" {
		want = 20
	}
	r.Target, r.Met = fmt.Sprintf("p99_ms <= %g", want), *r.P99Ms <= want
	b.emit(r)
	return nil
}

// A watcher follows stream i from version 0 and calls got for each event
// until ctx ends.
type watcher func(ctx context.Context, i int, got func(version uint64)) error

func streamIndex(prefix, stream string) int {
	var i int
	_, _ = fmt.Sscanf(stream[len(prefix):], "%d", &i)
	return i
}

func (b *bench) libWatcher(prefix string) watcher {
	return func(ctx context.Context, i int, got func(uint64)) error {
		for r, err := range b.env.store.Watch(ctx, fmt.Sprintf("%s%d", prefix, i), eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return err
			}
			got(r.Version)
		}
		return nil
	}
}

// wakers is the driver side's notifier: one broadcast channel per stream,
// closed by the appender after each commit, so an append wakes only the
// watchers of its stream.
type wakers struct {
	mu sync.Mutex
	ch []chan struct{}
}

func newWakers(n int) *wakers {
	w := &wakers{ch: make([]chan struct{}, n)}
	for i := range w.ch {
		w.ch[i] = make(chan struct{})
	}
	return w
}

func (w *wakers) changed(i int) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch[i]
}

func (w *wakers) notify(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch[i])
	w.ch[i] = make(chan struct{})
}

func (b *bench) drvWatcher(prefix string, wake *wakers) watcher {
	return func(ctx context.Context, i int, got func(uint64)) error {
		stream := fmt.Sprintf("%s%d", prefix, i)
		var after uint64
		for {
			changed := wake.changed(i)
			_, err := b.env.drv.read(ctx, stream, after+1, func(v uint64, _ string, _ []byte) error {
				got(v)
				after = v
				return nil
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil //nolint:nilerr // the run ended the watcher (ctx): not a failure of the read
				}
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
		}
	}
}

// watchRound runs one round (see watchLatency) and returns the latencies
// and its duration.
func (b *bench) watchRound(ctx context.Context, prefix string, watch watcher, appendOne func(ctx context.Context, stream string, version uint64) error) ([]time.Duration, time.Duration, error) {
	cfg := b.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := uint64(1 + cfg.watchPer) // version of the last event of each stream
	// recv[w][v] is when watcher w got version v (index 0 unused).
	recv := make([][]time.Time, cfg.watchers)
	sent := make([][]time.Time, cfg.watchStreams)
	for i := range sent {
		sent[i] = make([]time.Time, last+1)
	}
	var ready, done sync.WaitGroup
	ready.Add(cfg.watchers)
	done.Add(cfg.watchers)
	errs := make(chan error, cfg.watchers)
	var exited sync.WaitGroup
	for w := range cfg.watchers {
		recv[w] = make([]time.Time, last+1)
		exited.Go(func() {
			finished := false
			err := watch(ctx, w%cfg.watchStreams, func(v uint64) {
				if v > last || finished {
					return
				}
				recv[w][v] = time.Now()
				if v == 1 {
					ready.Done()
				}
				if v == last {
					finished = true
					done.Done()
				}
			})
			if err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		})
	}
	defer exited.Wait()
	stream := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
	for i := range cfg.watchStreams {
		if err := appendOne(ctx, stream(i), 0); err != nil {
			return nil, 0, err
		}
	}
	if err := waitGroup(ctx, &ready, errs, "watchers to start"); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	for k := range cfg.watchPer * cfg.watchStreams {
		i, v := k%cfg.watchStreams, uint64(2+k/cfg.watchStreams)
		if err := appendOne(ctx, stream(i), v-1); err != nil {
			return nil, 0, err
		}
		sent[i][v] = time.Now()
		if d := time.Until(start.Add(time.Duration(k+1) * cfg.watchEvery)); d > 0 {
			time.Sleep(d)
		}
	}
	if err := waitGroup(ctx, &done, errs, "watchers to receive every event"); err != nil {
		return nil, 0, err
	}
	elapsed := time.Since(start)
	cancel()
	exited.Wait()
	lat := make([]time.Duration, 0, cfg.watchers*cfg.watchPer)
	for w := range recv {
		i := w % cfg.watchStreams
		for v := uint64(2); v <= last; v++ {
			lat = append(lat, max(recv[w][v].Sub(sent[i][v]), 0))
		}
	}
	return lat, elapsed, nil
}

// waitGroup waits for wg, a watcher's error or a minute, whichever comes
// first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup, errs <-chan error, what string) error {
	ok := make(chan struct{})
	go func() { wg.Wait(); close(ok) }()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-ok:
		return nil
	case err := <-errs:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out waiting for " + what)
	}
}
