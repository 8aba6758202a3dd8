package main

import (
	"context"
	"fmt"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// Shape of read_category's store: streams of categoryStreamEvents events,
// appended whole, over at most maxCategories categories, interleaved so
// that each category's events are spread over the whole log.
const (
	categoryStreamEvents = 100
	maxCategories        = 1000
	categoryReps         = 200
)

// readCategory (read_category, issue 13 item 2) appends cfg.events events
// in streams of 100 over 1,000 categories (cat<c>-<s>; stream i is in
// category i mod 1,000, so a category's streams lie far apart in the
// log), plus one stream as long as a category. It then reads categories
// through Read of all streams with Filter.StreamPrefix "cat<c>-", and the
// single stream through Read of that stream, categoryReps times each,
// alternating which goes first, each timed read after an untimed one of
// the same events (caches warm on both sides). The driver column is the
// single stream's rate: the ratio is what a category read costs against
// a stream read of the same size, and the target is at most twice.
func (b *bench) readCategory(ctx context.Context) error {
	cfg := b.cfg
	streams := max(cfg.events/categoryStreamEvents, 1)
	cats := min(maxCategories, streams)
	perCat := streams / cats * categoryStreamEvents
	cfg.logf("read_category: %d events in %d streams over %d categories (%d events each)", streams*categoryStreamEvents, streams, cats, perCat)
	evs, _, err := counterEvents(categoryStreamEvents)
	if err != nil {
		return err
	}
	prefix := func(c int) string { return fmt.Sprintf("cat%s%d-", b.id, c) }
	for i := range streams {
		if _, err := b.env.store.Append(ctx, fmt.Sprint(prefix(i%cats), i/cats), eventstore.NoStream, evs...); err != nil {
			return fmt.Errorf("read_category: append: %w", err)
		}
	}
	single := "catsingle" + b.id + "-0"
	for n := 0; n < perCat; n += len(evs) {
		if _, err := b.env.store.Append(ctx, single, eventstore.Exact(uint64(n)), evs[:min(len(evs), perCat-n)]...); err != nil {
			return fmt.Errorf("read_category: append: %w", err)
		}
	}
	read := func(stream string, f eventstore.Filter) (time.Duration, error) {
		t := time.Now()
		n := 0
		for _, err := range b.env.store.Read(ctx, stream, eventstore.ReadOptions{Filter: f}) {
			if err != nil {
				return 0, err
			}
			n++
		}
		if n != perCat {
			return 0, fmt.Errorf("read %d events of %s %+v, want %d", n, stream, f, perCat)
		}
		return time.Since(t), nil
	}
	var catT, streamT time.Duration
	for rep := range categoryReps {
		c := (rep * 37) % cats
		cat := func() error {
			_, err := read(eventstore.AllStreams, eventstore.Filter{StreamPrefix: prefix(c)})
			if err == nil {
				var d time.Duration
				d, err = read(eventstore.AllStreams, eventstore.Filter{StreamPrefix: prefix(c)})
				catT += d
			}
			return err
		}
		stream := func() error {
			_, err := read(single, eventstore.Filter{})
			if err == nil {
				var d time.Duration
				d, err = read(single, eventstore.Filter{})
				streamT += d
			}
			return err
		}
		if err := alternate(rep, cat, stream); err != nil {
			return fmt.Errorf("read_category: %w", err)
		}
	}
	total := perCat * categoryReps
	r := b.result("read_category", perCat, perSecond(total, catT), perSecond(total, streamT))
	r.Count = categoryReps
	r.Target, r.Met = atLeast(r.Ratio, 0.5)
	b.emit(r)
	return nil
}
