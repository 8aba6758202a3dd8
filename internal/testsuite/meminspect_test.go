package testsuite_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/esv2/esv2/eventstore"
)

// The reference store's Inspector (what the esv2 command reads through),
// so that the suite's Inspector cases are tested too: the reference passes
// them, and each of the inspector bugs below fails its case.

var _ eventstore.Inspector = (*memStore)(nil)

// inspect enters an Inspector call and locks the database; the caller
// unlocks it.
func (m *memStore) inspect(ctx context.Context) error {
	if err := m.enter(ctx, nil); err != nil {
		return err
	}
	m.db.mu.Lock()
	if m.closed {
		m.db.mu.Unlock()
		return eventstore.ErrClosed
	}
	return nil
}

// ListStreams returns the streams with events, by byte order of their IDs.
func (m *memStore) ListStreams(ctx context.Context, prefix, after string, limit int) ([]eventstore.StreamSummary, error) {
	if err := m.inspect(ctx); err != nil {
		return nil, err
	}
	defer m.db.mu.Unlock()
	match := func(id string) bool { return strings.HasPrefix(id, prefix) }
	if m.bugs.listPrefixIsLike {
		// LIKE 'prefix%' without escaping: '_' matches any character.
		match = func(id string) bool {
			if len(id) < len(prefix) {
				return false
			}
			for i := range len(prefix) {
				if prefix[i] != '_' && prefix[i] != id[i] {
					return false
				}
			}
			return true
		}
	}
	var out []eventstore.StreamSummary
	for id := range m.db.streams {
		list := m.list(id)
		if len(list) == 0 || !match(id) || id <= after {
			continue
		}
		out = append(out, eventstore.StreamSummary{StreamID: id, Version: m.version(id), LastTime: list[len(list)-1].Time})
	}
	slices.SortFunc(out, func(a, b eventstore.StreamSummary) int { return strings.Compare(a.StreamID, b.StreamID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Summary describes the store; its size is the bytes of its events' data.
func (m *memStore) Summary(ctx context.Context) (eventstore.StoreSummary, error) {
	if err := m.inspect(ctx); err != nil {
		return eventstore.StoreSummary{}, err
	}
	defer m.db.mu.Unlock()
	sum := eventstore.StoreSummary{Snapshots: uint64(len(m.db.snaps)), SchemaVersion: 1}
	all := m.list(eventstore.AllStreams)
	sum.Events = uint64(len(all))
	for id := range m.db.streams {
		if len(m.list(id)) > 0 {
			sum.Streams++
		}
	}
	if n := len(m.db.events); n > 0 {
		sum.Position = m.db.events[n-1].Position
	}
	for _, e := range all {
		sum.SizeBytes += int64(eventstore.EventSize(e.Event))
		if sum.Oldest.IsZero() || e.Time.Before(sum.Oldest) {
			sum.Oldest = e.Time
		}
		if e.Time.After(sum.Newest) {
			sum.Newest = e.Time
		}
	}
	if m.bugs.summaryNoOldest {
		sum.Oldest = sum.Newest
	}
	return sum, nil
}

// ListSnapshots returns the stream's snapshots by name.
func (m *memStore) ListSnapshots(ctx context.Context, streamID string) ([]eventstore.Snapshot, error) {
	if err := m.inspect(ctx); err != nil {
		return nil, err
	}
	defer m.db.mu.Unlock()
	var out []eventstore.Snapshot
	for k, s := range m.db.snaps {
		if k[0] == streamID {
			out = append(out, s)
		}
	}
	order := func(a, b eventstore.Snapshot) int { return strings.Compare(a.Name, b.Name) }
	if m.bugs.snapshotsByVersion {
		order = func(a, b eventstore.Snapshot) int { return int(b.Version) - int(a.Version) }
	}
	slices.SortFunc(out, order)
	return out, nil
}

// Verify finds nothing wrong in the reference store but what a bug
// makes it see.
func (m *memStore) Verify(ctx context.Context) ([]eventstore.Problem, error) {
	if err := m.inspect(ctx); err != nil {
		return nil, err
	}
	defer m.db.mu.Unlock()
	var problems []eventstore.Problem
	for id := range m.db.streams {
		list := m.list(id)
		for i, e := range list {
			want := list[0].Version + uint64(i)
			if m.bugs.verifyFromOne {
				// A checker that takes every stream to start at version 1,
				// as if nothing were ever truncated.
				want = uint64(i + 1)
			}
			if e.Version != want {
				problems = append(problems, eventstore.Problem{Check: eventstore.CheckVersions, StreamID: id, Position: e.Position,
					Detail: fmt.Sprintf("version %d where %d was due", e.Version, want)})
				break
			}
		}
	}
	return problems, nil
}
