// Package thirdparty is a tiny in-memory event store adapter written as a
// third party would write one: outside esv2's module, on its public
// packages only. It implements the driver interface of
// github.com/esv2/esv2/eventstore/driver (plus the EventFinder and
// Listener abilities) over maps and a mutex, and gets everything else (the
// checks, paging, watching, the Stream handle) from the front that
// driver.New returns. Its test runs the conformance suite through
// eventstoretest; esv2's own tests run that test, so a change to the
// front or the suite that an outside adapter could not follow fails there.
package thirdparty

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// DB is an in-memory database; several stores can be open on it, as
// several processes open one file or one schema.
type DB struct {
	mu      sync.Mutex
	events  []eventstore.Recorded // in global order: an event's position is its index + 1
	streams map[string][]int      // stream ID -> indexes into events, in version order
	ids     map[string]int        // event ID -> index into events
	snaps   map[[2]string]eventstore.Snapshot
	// notices of every open store, to tell each of the appends made
	// through the others.
	notices map[*memDriver]driver.Notices
}

// NewDB returns an empty database.
func NewDB() *DB {
	return &DB{
		streams: make(map[string][]int),
		ids:     make(map[string]int),
		snaps:   make(map[[2]string]eventstore.Snapshot),
		notices: make(map[*memDriver]driver.Notices),
	}
}

// Open returns a store on a new, empty database.
func Open() *driver.Front { return NewDB().Open() }

// Open returns a new store on db.
func (db *DB) Open() *driver.Front {
	return driver.New(&memDriver{db: db}, driver.Config{})
}

// memDriver is one store's driver. The front has checked contexts, the
// closed state and the arguments before it calls any method.
type memDriver struct {
	db     *DB
	closed bool // guarded by db.mu
}

var (
	_ driver.Driver      = (*memDriver)(nil)
	_ driver.EventFinder = (*memDriver)(nil)
	_ driver.Listener    = (*memDriver)(nil)
)

// lock takes the database's lock for one call, unless the store is closed.
func (d *memDriver) lock() error {
	d.db.mu.Lock()
	if d.closed {
		d.db.mu.Unlock()
		return eventstore.ErrClosed
	}
	return nil
}

// stored returns the time a store keeps for t.
func stored(t time.Time) time.Time { return t.Truncate(eventstore.TimePrecision) }

func (d *memDriver) Append(ctx context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	if err := d.lock(); err != nil {
		return eventstore.AppendResult{}, err
	}
	others, res, err := d.appendLocked(ctx, b)
	d.db.mu.Unlock()
	for _, n := range others {
		n.Appended(b.StreamID)
	}
	return res, err
}

// appendLocked appends b with the database's lock held, and returns the
// notices of the other stores to tell.
func (d *memDriver) appendLocked(ctx context.Context, b *driver.Batch) ([]driver.Notices, eventstore.AppendResult, error) {
	// The append is taken once the lock is held: a context that ended
	// while it waited for the lock means nothing is written.
	if err := ctx.Err(); err != nil {
		return nil, eventstore.AppendResult{}, err
	}
	db := d.db
	version := uint64(len(db.streams[b.StreamID]))
	var dups []eventstore.Duplicate
	isDup := make(map[int]bool)
	for i, e := range b.Events {
		idx, ok := db.ids[e.ID]
		if e.ID == "" || !ok {
			continue
		}
		if in := db.events[idx]; in.StreamID != b.StreamID {
			return nil, eventstore.AppendResult{}, &eventstore.IdempotencyError{EventID: e.ID, StreamID: b.StreamID, StoredIn: in.StreamID}
		}
		dups = append(dups, eventstore.Duplicate{Index: i, ID: e.ID, Version: db.events[idx].Version})
		isDup[i] = true
	}
	if len(dups) == len(b.Events) {
		return nil, eventstore.AppendResult{Version: version, Duplicates: dups}, nil
	}
	if !b.Expected.Matches(version) {
		return nil, eventstore.AppendResult{}, &eventstore.ConflictError{StreamID: b.StreamID, Expected: b.Expected, Actual: version}
	}
	now := stored(time.Now())
	res := eventstore.AppendResult{Duplicates: dups}
	for i, e := range b.Events {
		if isDup[i] {
			continue
		}
		e.Data = slices.Clone(e.Data)
		e.Metadata = maps.Clone(e.Metadata)
		e.Time = stored(e.Time)
		if e.Time.IsZero() {
			e.Time = now
		}
		version++
		r := eventstore.Recorded{Event: e, StreamID: b.StreamID, Version: version, Position: uint64(len(db.events) + 1)}
		db.streams[b.StreamID] = append(db.streams[b.StreamID], len(db.events))
		if e.ID != "" {
			db.ids[e.ID] = len(db.events)
		}
		db.events = append(db.events, r)
		res.Appended++
		res.Position = r.Position
	}
	res.Version = version
	var others []driver.Notices
	for other, n := range db.notices {
		if other != d {
			others = append(others, n)
		}
	}
	return others, res, nil
}

func (d *memDriver) ReadPage(ctx context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	if err := d.lock(); err != nil {
		return page, err
	}
	defer d.db.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return page, err
	}
	// A key (version, or position for AllStreams) is an index + 1 of the
	// stream's list, or of the whole log.
	n := len(d.db.events)
	at := func(i int) eventstore.Recorded { return d.db.events[i] }
	if q.StreamID != eventstore.AllStreams {
		list := d.db.streams[q.StreamID]
		n = len(list)
		at = func(i int) eventstore.Recorded { return d.db.events[list[i]] }
	}
	lo, hi := int(r.From)-1, int(min(r.To, uint64(n)))-1
	step, i := 1, lo
	if q.Backwards {
		step, i = -1, hi
	}
	bytes, got := 0, 0
	for ; i >= lo && i <= hi && got < r.Limit && bytes < eventstore.PageBytes; i += step {
		e := at(i)
		if !matches(e, q.Filter) {
			continue
		}
		page = append(page, e)
		got++
		bytes += eventstore.EventSize(e.Event)
	}
	return page, nil
}

// matches applies a filter in Go, where a database would run it in SQL.
func matches(r eventstore.Recorded, f eventstore.Filter) bool {
	if !strings.HasPrefix(r.StreamID, f.StreamPrefix) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	for _, c := range f.Metadata {
		v, ok := r.Metadata[c.Key]
		switch {
		case !ok:
			return false
		case c.Op == eventstore.MetadataEq && v != c.Values[0],
			c.Op == eventstore.MetadataIn && !slices.Contains(c.Values, v),
			c.Op == eventstore.MetadataPrefix && !strings.HasPrefix(v, c.Values[0]):
			return false
		}
	}
	return true
}

// headLocked returns the key of a stream's last event, 0 for none.
func (d *memDriver) headLocked(streamID string) uint64 {
	if streamID == eventstore.AllStreams {
		return uint64(len(d.db.events))
	}
	return uint64(len(d.db.streams[streamID]))
}

func (d *memDriver) Head(_ context.Context, streamID string) (uint64, error) {
	if err := d.lock(); err != nil {
		return 0, err
	}
	defer d.db.mu.Unlock()
	return d.headLocked(streamID), nil
}

func (d *memDriver) Info(_ context.Context, streamID string) (eventstore.StreamInfo, error) {
	if err := d.lock(); err != nil {
		return eventstore.StreamInfo{}, err
	}
	defer d.db.mu.Unlock()
	info := eventstore.StreamInfo{StreamID: streamID, Count: uint64(len(d.db.events))}
	last := len(d.db.events) - 1
	if streamID != eventstore.AllStreams {
		list := d.db.streams[streamID]
		info.Count = uint64(len(list))
		last = -1
		if len(list) > 0 {
			last = list[len(list)-1]
		}
	}
	if last >= 0 {
		info.LastTime = d.db.events[last].Time
		info.Position = d.db.events[last].Position
		if streamID != eventstore.AllStreams {
			info.Version = d.db.events[last].Version
		}
	}
	return info, nil
}

func (d *memDriver) SaveSnapshot(_ context.Context, s eventstore.Snapshot) error {
	if err := d.lock(); err != nil {
		return err
	}
	defer d.db.mu.Unlock()
	if err := driver.SnapshotPastHead(s, d.headLocked(s.StreamID)); err != nil {
		return err
	}
	k := [2]string{s.StreamID, s.Name}
	if old, ok := d.db.snaps[k]; ok && old.Version > s.Version {
		return nil
	}
	s.Data = slices.Clone(s.Data)
	s.Time = stored(time.Now())
	d.db.snaps[k] = s
	return nil
}

func (d *memDriver) LoadSnapshot(_ context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if err := d.lock(); err != nil {
		return eventstore.Snapshot{}, err
	}
	defer d.db.mu.Unlock()
	s, ok := d.db.snaps[[2]string{streamID, name}]
	if !ok {
		return eventstore.Snapshot{}, fmt.Errorf("thirdparty: snapshot %q of %q: %w", name, streamID, eventstore.ErrNotFound)
	}
	s.Data = slices.Clone(s.Data)
	return s, nil
}

// FindEvent is the EventFinder ability.
func (d *memDriver) FindEvent(_ context.Context, eventID string) (eventstore.Recorded, error) {
	if err := d.lock(); err != nil {
		return eventstore.Recorded{}, err
	}
	defer d.db.mu.Unlock()
	idx, ok := d.db.ids[eventID]
	if !ok {
		return eventstore.Recorded{}, fmt.Errorf("thirdparty: event %q: %w", eventID, eventstore.ErrNotFound)
	}
	return d.db.events[idx], nil
}

// Listen is the Listener ability: appends made through the other stores
// on the database are reported to n.
func (d *memDriver) Listen(n driver.Notices) {
	d.db.mu.Lock()
	defer d.db.mu.Unlock()
	d.db.notices[d] = n
}

func (d *memDriver) Close() error {
	d.db.mu.Lock()
	defer d.db.mu.Unlock()
	d.closed = true
	delete(d.db.notices, d)
	return nil
}
