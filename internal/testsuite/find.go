package testsuite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/eventstore"
)

// findEventTests check Store.FindEvent, which looks an event up by its ID
// (issue 10: the aggregate asks it whether a command was applied, instead
// of appending an event that must be refused). A store that declares it
// cannot (Features.NoFindEvent) must say so with errors.ErrUnsupported,
// after the same checks as every other method.
func findEventTests(f Features) []test {
	tests := []test{
		{"InvalidID", leaf(testFindInvalid)},
		{"CancelledContext", leaf(testFindCancelled)},
	}
	if f.NoFindEvent {
		return append(tests, test{"Unsupported", leaf(testFindUnsupported)})
	}
	return append(tests,
		test{"Found", leaf(testFindFound)},
		test{"NotFound", leaf(testFindNotFound)},
	)
}

// testFindFound looks up events of several streams and batches: each comes
// back as a read returns it, in its own stream with its version, position,
// time, data and metadata.
func testFindFound(t *testing.T, s eventstore.Store) {
	at := time.Date(2023, 4, 5, 6, 7, 8, 9000, time.UTC)
	mustAppend(t, s, "a", eventstore.NoStream,
		eventstore.Event{ID: "a1", Type: "t1", Data: []byte("first"), Metadata: map[string]string{"k": "v"}, Time: at},
		ev("t", "no ID"),
		evID("a3", "t2"),
	)
	mustAppend(t, s, "b", eventstore.NoStream, evID("b1", "t"), evID("A1", "t")) // IDs are case-sensitive
	mustAppend(t, s, "a", eventstore.Exact(3), evID("a4", "t"))
	// A retry stores nothing and changes nothing.
	mustAppend(t, s, "a", eventstore.Any, evID("a1", "t1"))
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	n := 0
	for _, want := range all {
		if want.ID == "" {
			continue
		}
		n++
		got, err := s.FindEvent(ctxTimeout(t), want.ID)
		if err != nil {
			t.Errorf("FindEvent(%q): %v", want.ID, err)
			continue
		}
		if diff := cmp.Diff(want, got, cmpBytes, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("FindEvent(%q): event differs from the read (-read +found):\n%s", want.ID, diff)
		}
	}
	if n != 5 {
		t.Errorf("the store holds %d events with an ID, want 5", n)
	}
}

// testFindNotFound looks up IDs that are not stored: never stored, stored
// only in refused batches, or near a stored one (a prefix, another case).
func testFindNotFound(t *testing.T, s eventstore.Store) {
	notFound := func(id string) {
		t.Helper()
		got, err := s.FindEvent(ctxTimeout(t), id)
		if !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("FindEvent(%q): %+v, %v; want errors.Is(err, ErrNotFound)", id, got, err)
		}
	}
	notFound("missing")
	mustAppend(t, s, "s", eventstore.NoStream, evID("stored", "t"), ev("t", "no ID"))
	// Refused batches store none of their IDs.
	_, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, evID("conflicted", "t"))
	wantConflict(t, err, "s", eventstore.NoStream, 2)
	_, err = s.Append(ctxTimeout(t), "other", eventstore.Any, evID("beside-a-stored-one", "t"), evID("stored", "t"))
	wantErr(t, "Append of an ID stored in another stream", err, eventstore.ErrIdempotency)
	_, err = s.Append(ctxTimeout(t), "s", eventstore.Any, evID("invalid-batch", "t"), eventstore.Event{})
	wantValidation(t, "Append of an event without type", err)
	for _, id := range []string{"missing", "conflicted", "beside-a-stored-one", "invalid-batch", "stor", "stored2", "STORED", "%", "_tored"} {
		notFound(id)
	}
	if _, err := s.FindEvent(ctxTimeout(t), "stored"); err != nil {
		t.Errorf("FindEvent(%q): %v", "stored", err)
	}
}

func testFindInvalid(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("e", "t"))
	for _, id := range []string{"", "\xff", "e\x00", strings.Repeat("e", eventstore.MaxIDLength+1)} {
		_, err := s.FindEvent(ctxTimeout(t), id)
		wantValidation(t, fmt.Sprintf("FindEvent(%q)", clip(id)), err)
	}
}

func testFindCancelled(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("e", "t"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, id := range []string{"e", "missing"} {
		_, err := s.FindEvent(ctx, id)
		wantErr(t, fmt.Sprintf("FindEvent(%q) with a cancelled context", id), err, context.Canceled)
	}
}

// testFindUnsupported is run instead of Found and NotFound for a store
// that declares it cannot look events up: it must say so, whether the ID
// is stored or not.
func testFindUnsupported(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("e", "t"))
	for _, id := range []string{"e", "missing"} {
		_, err := s.FindEvent(ctxTimeout(t), id)
		wantErr(t, fmt.Sprintf("FindEvent(%q) on a store without the ability", id), err, errors.ErrUnsupported)
	}
}
