package sqlite_test

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// TestMemoryReadsNotBusyUnderWriter reads and watches an in-memory store
// while 16 goroutines keep its writer saturated (issue 9 item 2): no read,
// watch or append may fail with ErrBusy, since the store's own connections
// must never fight over the database's lock. The busy timeout is 0 so that
// any such fight fails at once instead of after 5 s; before the fix the
// first few reads failed.
func TestMemoryReadsNotBusyUnderWriter(t *testing.T) {
	const appenders, readers, reads = 16, 4, 40
	s := openMemory(t, sqlite.WithBusyTimeout(0))
	ctx := testCtx(t)
	ev := eventstore.Event{Type: "t", Data: make([]byte, 100)}
	stream := func(i int) string { return fmt.Sprintf("busy-%d", i%appenders) }

	loadCtx, stopLoad := context.WithCancel(ctx)
	load, loadCtx := errgroup.WithContext(loadCtx)
	for i := range appenders {
		load.Go(func() error {
			for n := uint64(0); loadCtx.Err() == nil; n++ {
				if _, err := s.Append(loadCtx, stream(i), eventstore.Exact(n), ev); err != nil {
					if loadCtx.Err() != nil {
						return nil //nolint:nilerr // the load was stopped: an append cut short is expected
					}
					return fmt.Errorf("append: %w", err)
				}
			}
			return nil
		})
	}
	load.Go(func() error {
		for _, err := range s.Watch(loadCtx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
		}
		return nil
	})

	var g errgroup.Group
	for r := range readers {
		g.Go(func() error {
			for i := range reads {
				id := stream(r + i)
				if _, err := s.Info(ctx, id); err != nil {
					return fmt.Errorf("info: %w", err)
				}
				for _, err := range s.Read(ctx, id, eventstore.ReadOptions{Limit: 100}) {
					if err != nil {
						return fmt.Errorf("read: %w", err)
					}
				}
			}
			return nil
		})
	}
	readErr := g.Wait()
	stopLoad()
	loadErr := load.Wait()
	if readErr != nil {
		t.Errorf("reads under a saturating writer: %v", readErr)
	}
	if loadErr != nil {
		t.Errorf("appends and watch under load: %v", loadErr)
	}
	st := s.Stats()
	if st.Commits < 2 {
		t.Errorf("the writer committed %d times during the reads; the test did not load it", st.Commits)
	}
	t.Logf("%d appends in %d commits alongside %d reads", st.Appends, st.Commits, 2*readers*reads)
}
