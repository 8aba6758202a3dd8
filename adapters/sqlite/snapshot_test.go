package sqlite_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// TestSnapshotsInGroupCommit saves snapshots from many goroutines while
// others append: the saves go through the writer's group commit (counted
// in Stats), each is stored and loads back as saved, and one past its
// stream's head is refused without harming the rest of its group.
func TestSnapshotsInGroupCommit(t *testing.T) {
	const streams = 32
	s := openMemory(t)
	ctx := testCtx(t)
	for i := range streams {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstore.Event{Type: "t"}, eventstore.Event{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	var g errgroup.Group
	for i := range streams {
		id := fmt.Sprintf("s-%d", i)
		g.Go(func() error {
			_, err := s.Append(ctx, id, eventstore.Exact(2), eventstore.Event{Type: "t"})
			return err
		})
		g.Go(func() error {
			return s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: id, Version: 2, Schema: "v1", Data: []byte(id)})
		})
		g.Go(func() error {
			err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: id, Name: "ahead", Version: 9, Schema: "v1"})
			if !errors.Is(err, eventstore.ErrInvalidInput) {
				return fmt.Errorf("snapshot past the head of %s: %w, want ErrInvalidInput", id, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Snapshots != streams {
		t.Errorf("Stats.Snapshots = %d, want %d", st.Snapshots, streams)
	}
	for i := range streams {
		id := fmt.Sprintf("s-%d", i)
		sn, err := s.LoadSnapshot(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if sn.Version != 2 || sn.Schema != "v1" || string(sn.Data) != id || sn.Name != eventstore.DefaultSnapshotName {
			t.Errorf("snapshot of %s: %+v", id, sn)
		}
		if sn.Time.Before(before.Truncate(eventstore.TimePrecision)) || sn.Time.After(time.Now()) || !sn.Time.Equal(sn.Time.Truncate(eventstore.TimePrecision)) {
			t.Errorf("snapshot of %s has time %v, want the save's, in %v", id, sn.Time, eventstore.TimePrecision)
		}
		if _, err := s.LoadSnapshot(ctx, id, "ahead"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("refused snapshot of %s: load gives %v, want ErrNotFound", id, err)
		}
		if info, err := s.Info(ctx, id); err != nil || info.Version != 3 {
			t.Errorf("Info(%s) = %+v, %v; want version 3", id, info, err)
		}
	}
}
