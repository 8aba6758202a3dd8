package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// TestSnapshotRacingDelete: snapshot saves race deletions of their
// stream, each pair started together. Whatever the order, a deleted
// stream keeps no snapshot: a save either is refused (the stream is
// deleted) or lands before the deletion, which removes it. Before the
// save read the stream's row FOR SHARE and the deletion wrote its
// tombstone first, a save whose statement began before a deletion
// committed inserted its snapshot after the deletion's DELETE had run.
func TestSnapshotRacingDelete(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	const n = 150
	kept, refused := 0, 0
	for i := range n {
		stream := fmt.Sprintf("snap-race-%d", i)
		if _, err := s.Append(ctx, stream, eventstore.NoStream, evt("1"), evt("2")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var delErr, saveErr error
		wg.Go(func() {
			<-start
			delErr = s.DeleteStream(ctx, stream, eventstore.Any)
		})
		wg.Go(func() {
			<-start
			saveErr = s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: stream, Version: 2, Data: []byte("state")})
		})
		close(start)
		wg.Wait()
		if delErr != nil {
			t.Fatalf("%s: DeleteStream: %v", stream, delErr)
		}
		switch {
		case errors.Is(saveErr, eventstore.ErrStreamDeleted):
			refused++
		case saveErr != nil:
			t.Fatalf("%s: SaveSnapshot: %v", stream, saveErr)
		}
		if sn, err := s.LoadSnapshot(ctx, stream, ""); !errors.Is(err, eventstore.ErrNotFound) {
			kept++
			t.Errorf("%s: deleted, and LoadSnapshot answers %+v, %v; want ErrNotFound", stream, sn, err)
		}
	}
	t.Logf("%d races: %d saves refused as deleted, %d snapshots kept", n, refused, kept)
}
