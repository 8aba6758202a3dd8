package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// fanoutTimes is the bound (issue 13 item 1): a watcher at the
// head gets an append's event with a p99 latency at most this many times
// that of the ideal broadcast, 10,000 goroutines woken by one channel
// close, measured in the same run.
const fanoutTimes = 3

// watchFanout measures cfg.fanWatchers watchers at the head of one stream,
// then as many spread over 100 streams, each a row: watch_fanout/1 and
// watch_fanout/100. A round appends one event to each stream, one append
// at a time, and waits until every watcher got its stream's event; the
// latency is receipt time minus the time that append returned (0 when the
// watcher was faster than Append's return). The driver side is the ideal:
// as many goroutines, each waiting on one channel that a round closes,
// the latency from the close; a round of it runs before or after each
// round of watchers, alternately.
func (b *bench) watchFanout(ctx context.Context) error {
	for _, streams := range []int{1, 100} {
		if err := b.watchFanoutOf(ctx, min(streams, b.cfg.fanWatchers)); err != nil {
			return fmt.Errorf("watch_fanout/%d: %w", streams, err)
		}
	}
	return nil
}

func (b *bench) watchFanoutOf(ctx context.Context, streams int) error {
	cfg := b.cfg
	op := fmt.Sprintf("watch_fanout/%d", streams)
	cfg.logf("%s: %d watchers on %d streams, %d rounds", op, cfg.fanWatchers, streams, cfg.fanRounds)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rounds := cfg.fanRounds
	last := uint64(1 + rounds) // version of each stream's last event
	prefix := fmt.Sprintf("fanout-%s-%d-", b.id, streams)
	stream := func(i int) string { return fmt.Sprint(prefix, i) }

	// got[v] counts down the watchers still to get version v of their
	// stream, and closes done[v] at zero.
	got := make([]atomic.Int64, last+1)
	done := make([]chan struct{}, last+1)
	for v := range done {
		got[v].Store(int64(cfg.fanWatchers))
		done[v] = make(chan struct{})
	}
	recv := make([][]time.Time, cfg.fanWatchers)
	errs := make(chan error, cfg.fanWatchers)
	var exited sync.WaitGroup
	defer exited.Wait()
	defer cancel()
	for w := range cfg.fanWatchers {
		recv[w] = make([]time.Time, last+1)
		exited.Go(func() {
			for r, err := range b.env.store.Watch(ctx, stream(w%streams), eventstore.WatchOptions{From: eventstore.FromStart()}) {
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				if r.Version > last {
					continue
				}
				recv[w][r.Version] = time.Now()
				if got[r.Version].Add(-1) == 0 {
					close(done[r.Version])
				}
			}
		})
	}
	wait := func(v uint64, what string) error {
		t := time.NewTimer(time.Minute)
		defer t.Stop()
		select {
		case <-done[v]:
			return nil
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("timed out waiting for %s", what)
		}
	}
	for i := range streams {
		if _, err := b.env.store.Append(ctx, stream(i), eventstore.NoStream, eventstore.Event{Type: typeAdded, Data: []byte{0x80}}); err != nil {
			return err
		}
	}
	if err := wait(1, "the watchers to start"); err != nil {
		return err
	}

	ideal := newBroadcast(cfg.fanWatchers)
	defer ideal.stop()
	sent := make([][]time.Time, streams)
	for i := range sent {
		sent[i] = make([]time.Time, last+1)
	}
	var lib, drv []time.Duration
	var libT, drvT time.Duration
	for round := range rounds {
		v := uint64(2 + round)
		libRound := func() error {
			start := time.Now()
			for i := range streams {
				if _, err := b.env.store.Append(ctx, stream(i), eventstore.Exact(v-1), eventstore.Event{Type: typeAdded, Data: []byte{0x80}}); err != nil {
					return err
				}
				sent[i][v] = time.Now()
			}
			err := wait(v, fmt.Sprintf("every watcher to get version %d", v))
			libT += time.Since(start)
			return err
		}
		drvRound := func() error {
			lat, d := ideal.round()
			drv, drvT = append(drv, lat...), drvT+d
			return nil
		}
		if err := alternate(round, libRound, drvRound); err != nil {
			return err
		}
	}
	cancel()
	exited.Wait()
	for w := range recv {
		i := w % streams
		for v := uint64(2); v <= last; v++ {
			lib = append(lib, max(recv[w][v].Sub(sent[i][v]), 0))
		}
	}
	lp50, lp99 := percentiles(lib)
	dp50, dp99 := percentiles(drv)
	r := b.result(op, rounds*streams, perSecond(len(lib), libT), perSecond(len(drv), drvT))
	r.Count = len(lib)
	setLatency(&r, lp50, lp99, dp50, dp99)
	r.Target = fmt.Sprintf("p99 <= %d × ideal p99", fanoutTimes)
	r.Met = lp99 <= fanoutTimes*dp99
	b.emit(r)
	return nil
}

// broadcast is the ideal fan-out: n goroutines waiting on one channel,
// all woken by its close.
type broadcast struct {
	n     int
	mu    sync.Mutex
	ch    chan struct{} // the next round's
	woke  []time.Time   // woke[g] is when goroutine g saw the last close
	left  sync.WaitGroup
	quit  chan struct{}
	ended sync.WaitGroup
}

func newBroadcast(n int) *broadcast {
	b := &broadcast{n: n, ch: make(chan struct{}), woke: make([]time.Time, n), quit: make(chan struct{})}
	var ready sync.WaitGroup
	ready.Add(n)
	for g := range n {
		b.ended.Go(func() {
			ch := b.next()
			ready.Done()
			for {
				select {
				case <-ch:
				case <-b.quit:
					return
				}
				b.woke[g] = time.Now()
				ch = b.next()
				b.left.Done()
			}
		})
	}
	ready.Wait() // every goroutine waits on the first round's channel
	return b
}

// next returns the channel of the coming round.
func (b *broadcast) next() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// round closes the channel every goroutine waits on and returns each
// one's latency from the close, and the round's duration.
func (b *broadcast) round() ([]time.Duration, time.Duration) {
	b.left.Add(b.n)
	b.mu.Lock()
	ch := b.ch
	b.ch = make(chan struct{})
	b.mu.Unlock()
	start := time.Now()
	close(ch)
	b.left.Wait()
	d := time.Since(start)
	lat := make([]time.Duration, b.n)
	for g, t := range b.woke {
		lat[g] = t.Sub(start)
	}
	return lat, d
}

func (b *broadcast) stop() {
	close(b.quit)
	b.ended.Wait()
}
