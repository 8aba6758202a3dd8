package testsuite_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
	"github.com/esv2/esv2/internal/watch"
)

// memStore is a small in-memory reference implementation of the contract.
// It exists to test the suite itself: the suite must pass on it, and must
// fail on each of its deliberately broken variants (see mutants).
type memStore struct {
	db     *memDB
	closed bool // guarded by db.mu
	n      *watch.Notifier
	bugs   bugs
	// liveWatchers counts the watches that have gone live (joinRepeats).
	liveWatchers atomic.Int32
}

// memDB is the "database" under one or more memStores, as a file or a
// schema is under several processes' stores.
type memDB struct {
	mu      sync.Mutex
	events  []eventstore.Recorded // global order
	streams map[string][]int      // stream ID -> indexes into events
	ids     map[string]stored     // event ID -> where it is stored
	snaps   map[[2]string]eventstore.Snapshot
	stores  []*memStore // to wake their watchers, as a poller would
	// gone marks the indexes of removed events (deleted, truncated):
	// their positions stay taken.
	gone    map[int]bool
	deleted map[string]bool // tombstones
	live    int             // events not removed
}

type stored struct {
	stream  string
	version uint64
}

// bugs switches on deliberate contract violations, one per mutant.
type bugs struct {
	ignoreExpected         bool // appends never conflict
	noIdempotency          bool // IDs are not deduplicated
	prefixIsLike           bool // stream prefix filter matches case-insensitively, like SQLite's LIKE
	untilIgnored           bool // ReadOptions.Until is not applied
	partitionsIgnored      bool // Filter.Partitions is not applied (a driver that does not know of it)
	omitShiftsFields       bool // a read omitting IDs puts each type in the ID and leaves the type empty
	watchSkipsOne          bool // the watch hand-over from catch-up to live loses an event
	closeKeepsWatches      bool // Close does not wake watchers
	limitBeforeFilter      bool // Limit counts scanned events, not matching ones
	olderSnapshotWins      bool // an older snapshot overwrites a newer one
	partialBatch           bool // an invalid event in a batch still lets the ones before it in
	rawErrorOnClose        bool // a read on a closed store fails with a driver's error
	timeNotSet             bool // a zero Time is stored as is
	presentOffByOne        bool // a watch from the present starts one event early
	emptyUnchecked         bool // an empty batch skips the expected version check
	otherStreamIDOK        bool // an ID stored in another stream is stored again
	missingInfoError       bool // Info of a missing stream is ErrNotFound
	watchRepeatsLast       bool // a live page starts again at the last event yielded
	liveIgnoresFilter      bool // a watch filters its catch-up but not its live events
	metaPrefixIsEq         bool // the metadata prefix filter compares whole values
	resultFirstPos         bool // AppendResult.Position is the batch's first event's
	retryPositionZero      bool // AppendResult.Position is 0 on an idempotent retry, as before issue 14
	contextMetadataIgnored bool // Append does not add the context's metadata (WithMetadata) to events
	cancelYieldsError      bool // a watch ended by its context yields the context's error
	noCrossWake            bool // appends wake only the watchers of the store they went through
	nanoTimes              bool // times are kept to the nanosecond, not TimePrecision
	fromWraps              bool // a Read After a key above MaxInt64 wraps to a negative int64, read as the start
	pastEndEnds            bool // a watch after MaxInt64 or more ends at once
	zeroStartIsEnd         bool // a watch's zero Start begins at the end, as before issue 10
	snapshotPastHead       bool // a snapshot past the stream's head is stored

	// Bugs of a store whose watchers at the head share one read (issue 13).
	liveIgnoresMetadata bool // live events are filtered in memory on type and stream prefix only
	behindSkipsAhead    bool // a live page of more events than a shared tail keeps keeps only the last of them
	joinRepeats         bool // a watch that goes live beside another live one starts its first live page at its cursor

	// The order of the checks every method starts with (issue 10: the
	// adapters disagreed on it).
	closedBeforeNilContext bool // a closed store answers a nil context with ErrClosed
	closedBeforeContext    bool // a closed store answers an ended context with ErrClosed
	validateBeforeClosed   bool // a closed store answers invalid input with a ValidationError (SQLite did)
	validateBeforeContext  bool // invalid input with an ended context is a ValidationError

	ctxErrAfterWrite  bool // an append whose context ended while it was written returns the context's error (PostgreSQL did)
	ackAfterClose     bool // an append on a closed store reports success and stores nothing
	noSizeLimit       bool // events over the size limit are stored
	findReturnsLast   bool // FindEvent returns the last event of the stream that holds the ID
	findMissingIsZero bool // FindEvent of an unknown ID returns a zero event and no error

	// Bugs of the stream lifecycle (issue 12).
	positionReuse        bool // positions are allocated from the number of events stored, as max(position)+1 was
	deleteKeepsSnapshots bool // DeleteStream leaves the stream's snapshots
	appendAfterDelete    bool // a deleted stream takes appends again
	deletedIDRetry       bool // the IDs of a deleted stream's events stay, and their append passes for a retry
	snapshotAfterDelete  bool // a deleted stream takes snapshots
	deleteIgnoresExpect  bool // DeleteStream never conflicts
	truncateTakesAll     bool // TruncateStream may remove the last event too
	truncateOffByOne     bool // TruncateStream removes version before too
	deleteSnapsIgnoresNm bool // DeleteSnapshots removes every snapshot of the stream whatever the name
	infoCountsRemoved    bool // Info's Count includes the removed events
	watchWaitsRemoved    bool // a watch waits for the next key to come even when its event was removed

	// Bugs of the Inspector (issue 15: what the esv2 command reads).
	listPrefixIsLike   bool // ListStreams matches its prefix with LIKE, '_' a wildcard
	summaryNoOldest    bool // Summary's Oldest is the newest event's time
	snapshotsByVersion bool // ListSnapshots orders by version, not by name
	verifyFromOne      bool // Verify takes every stream to start at version 1 (truncation unknown to it)
}

func newMemStore(b bugs) *memStore {
	db := &memDB{
		streams: make(map[string][]int),
		ids:     make(map[string]stored),
		snaps:   make(map[[2]string]eventstore.Snapshot),
		gone:    make(map[int]bool),
		deleted: make(map[string]bool),
	}
	return db.open(b)
}

// open returns a new store on db.
func (db *memDB) open(b bugs) *memStore {
	db.mu.Lock()
	defer db.mu.Unlock()
	m := &memStore{db: db, n: watch.NewNotifier(), bugs: b}
	db.stores = append(db.stores, m)
	return m
}

var (
	_ eventstore.Store     = (*memStore)(nil)
	_ eventstore.Lifecycle = (*memStore)(nil)
)

// enter makes the checks every method starts with, in the order of
// eventstore/driver.Front: a nil context (a *ValidationError), an ended
// context (its error), a closed store (ErrClosed), then the arguments
// (valid, when not nil). The order-of-checks mutants reorder them.
func (m *memStore) enter(ctx context.Context, valid func() error) error {
	nilCtx := func() error {
		if ctx == nil {
			return validate.Context(ctx)
		}
		return nil
	}
	ended := func() error {
		if ctx == nil {
			return nil
		}
		return ctx.Err()
	}
	closed := func() error {
		m.db.mu.Lock()
		defer m.db.mu.Unlock()
		if m.closed {
			return eventstore.ErrClosed
		}
		return nil
	}
	args := func() error {
		if valid == nil {
			return nil
		}
		return valid()
	}
	order := []func() error{nilCtx, ended, closed, args}
	switch {
	case m.bugs.closedBeforeNilContext:
		order = []func() error{closed, nilCtx, ended, args}
	case m.bugs.closedBeforeContext:
		order = []func() error{nilCtx, closed, ended, args}
	case m.bugs.validateBeforeClosed:
		order = []func() error{nilCtx, ended, args, closed}
	case m.bugs.validateBeforeContext:
		order = []func() error{nilCtx, args, ended, closed}
	}
	for _, check := range order {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// position makes positions sparse (10, 20, ...) so that the suite cannot
// come to rely on dense ones.
func position(index int) uint64 { return uint64(index+1) * 10 }

func (m *memStore) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	maxSize := 0
	if m.bugs.noSizeLimit {
		maxSize = math.MaxInt
	}
	var invalid error
	err := m.enter(ctx, func() error {
		invalid = validate.Append(streamID, expected, events, maxSize)
		return invalid
	})
	if err != nil {
		if errors.Is(err, eventstore.ErrClosed) && m.bugs.ackAfterClose {
			return eventstore.AppendResult{Version: uint64(len(events)), Appended: len(events)}, nil
		}
		var ve *eventstore.ValidationError
		// invalid is set only if the arguments were checked, last: then
		// it is err.
		if m.bugs.partialBatch && errors.As(invalid, &ve) && ve.Index > 0 {
			m.db.mu.Lock()
			m.write(streamID, events[:ve.Index], nil)
			m.db.mu.Unlock()
		}
		return eventstore.AppendResult{}, err
	}
	if !m.bugs.contextMetadataIgnored {
		events = eventstore.MergeMetadata(events, eventstore.MetadataFrom(ctx))
	}
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed { // closed since the check: Close cut the call short
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	cur := m.version(streamID)
	if m.db.deleted[streamID] && !m.bugs.appendAfterDelete && !m.bugs.deletedIDRetry {
		return eventstore.AppendResult{}, &eventstore.StreamDeletedError{StreamID: streamID, Version: cur}
	}
	var dups []eventstore.Duplicate
	isDup := make(map[int]bool)
	for i, e := range events {
		if e.ID == "" || m.bugs.noIdempotency {
			continue
		}
		in, ok := m.db.ids[e.ID]
		if !ok {
			continue
		}
		if in.stream != streamID && m.bugs.otherStreamIDOK {
			continue
		}
		if in.stream != streamID {
			return eventstore.AppendResult{}, &eventstore.IdempotencyError{EventID: e.ID, StreamID: streamID, StoredIn: in.stream}
		}
		dups = append(dups, eventstore.Duplicate{Index: i, ID: e.ID, Version: in.version})
		isDup[i] = true
	}
	if len(events) > 0 && len(dups) == len(events) {
		res := eventstore.AppendResult{Version: cur, Duplicates: dups}
		if !m.bugs.retryPositionZero {
			for _, d := range dups {
				res.Position = max(res.Position, position(m.db.streams[streamID][d.Version-1]))
			}
		}
		return res, nil
	}
	if m.db.deleted[streamID] && !m.bugs.appendAfterDelete {
		return eventstore.AppendResult{}, &eventstore.StreamDeletedError{StreamID: streamID, Version: cur}
	}
	if len(events) == 0 && m.bugs.emptyUnchecked {
		return eventstore.AppendResult{Version: cur}, nil
	}
	if !m.bugs.ignoreExpected && !expected.Matches(cur) {
		return eventstore.AppendResult{}, &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: cur}
	}
	res := m.write(streamID, events, isDup)
	res.Duplicates = dups
	if m.bugs.ctxErrAfterWrite && ctx.Err() != nil {
		return eventstore.AppendResult{}, ctx.Err()
	}
	return res, nil
}

// write appends the events not marked duplicate; m.db.mu is held.
func (m *memStore) write(streamID string, events []eventstore.Event, isDup map[int]bool) eventstore.AppendResult {
	now := m.storedTime(time.Now())
	var res eventstore.AppendResult
	for i, e := range events {
		if isDup[i] {
			continue
		}
		e.Data = slices.Clone(e.Data)
		e.Metadata = maps.Clone(e.Metadata)
		if e.Time.IsZero() && !m.bugs.timeNotSet {
			e.Time = now
		}
		e.Time = m.storedTime(e.Time)
		idx := len(m.db.events)
		pos := position(idx)
		if m.bugs.positionReuse {
			pos = position(m.db.live)
		}
		r := eventstore.Recorded{Event: e, StreamID: streamID, Version: m.version(streamID) + 1, Position: pos}
		m.db.live++
		m.db.events = append(m.db.events, r)
		m.db.streams[streamID] = append(m.db.streams[streamID], idx)
		if e.ID != "" {
			m.db.ids[e.ID] = stored{streamID, r.Version}
		}
		res.Appended++
		if res.Position == 0 || !m.bugs.resultFirstPos {
			res.Position = r.Position
		}
	}
	res.Version = m.version(streamID)
	if res.Appended > 0 {
		for _, other := range m.db.stores {
			if other == m || !m.bugs.noCrossWake {
				other.n.Notify()
			}
		}
	}
	return res
}

// storedTime returns t as the store keeps it.
func (m *memStore) storedTime(t time.Time) time.Time {
	if m.bugs.nanoTimes {
		return t.Round(0)
	}
	return t.Truncate(eventstore.TimePrecision)
}

// matches applies a filter in Go (a real store runs it in the database).
func (m *memStore) matches(r eventstore.Recorded, f eventstore.Filter) bool {
	if f.StreamPrefix != "" {
		id, p := r.StreamID, f.StreamPrefix
		if m.bugs.prefixIsLike {
			id, p = strings.ToLower(id), strings.ToLower(p)
		}
		if !strings.HasPrefix(id, p) {
			return false
		}
	}
	if !m.bugs.partitionsIgnored && !f.Partitions.Keeps(r.StreamID) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	for _, c := range f.Metadata {
		v, ok := r.Metadata[c.Key]
		if !ok {
			return false
		}
		switch c.Op {
		case eventstore.MetadataEq:
			ok = v == c.Values[0]
		case eventstore.MetadataIn:
			ok = slices.Contains(c.Values, v)
		case eventstore.MetadataPrefix:
			ok = strings.HasPrefix(v, c.Values[0])
			if m.bugs.metaPrefixIsEq {
				ok = v == c.Values[0]
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// list returns the events of a stream in order; m.db.mu is held.
func (m *memStore) list(streamID string) []eventstore.Recorded {
	if streamID == eventstore.AllStreams {
		out := make([]eventstore.Recorded, 0, m.db.live)
		for idx, r := range m.db.events {
			if !m.db.gone[idx] {
				out = append(out, r)
			}
		}
		return out
	}
	out := make([]eventstore.Recorded, 0, len(m.db.streams[streamID]))
	for _, idx := range m.db.streams[streamID] {
		if !m.db.gone[idx] {
			out = append(out, m.db.events[idx])
		}
	}
	return out
}

func key(streamID string) func(eventstore.Recorded) uint64 {
	if streamID == eventstore.AllStreams {
		return func(r eventstore.Recorded) uint64 { return r.Position }
	}
	return func(r eventstore.Recorded) uint64 { return r.Version }
}

func (m *memStore) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	err := m.enter(ctx, func() error {
		if err := validate.Filter(streamID, opts.Filter); err != nil {
			return err
		}
		if opts.Limit < 0 {
			return &eventstore.ValidationError{Field: "limit", Index: -1, Reason: "negative"}
		}
		if opts.Omit&^eventstore.AllFields != 0 {
			return &eventstore.ValidationError{Field: "omit", Index: -1, Reason: "unknown field"}
		}
		return nil
	})
	if err != nil {
		return watch.ErrorSeq(err)
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		m.db.mu.Lock()
		if m.closed { // closed since Read was called
			m.db.mu.Unlock()
			if m.bugs.rawErrorOnClose {
				yield(eventstore.Recorded{}, errors.New("sql: database is closed"))
				return
			}
			yield(eventstore.Recorded{}, eventstore.ErrClosed)
			return
		}
		list := m.list(streamID)
		m.db.mu.Unlock()
		k := key(streamID)
		if opts.Backwards {
			slices.Reverse(list)
		}
		after, fromEnd := opts.From.Cursor()
		if m.bugs.fromWraps && int64(after) < 0 {
			after = 0
		}
		if fromEnd && !opts.Backwards {
			return
		}
		n := 0
		for _, r := range list {
			if opts.Limit > 0 && n >= opts.Limit {
				return
			}
			if after > 0 && !fromEnd && ((!opts.Backwards && k(r) <= after) || (opts.Backwards && k(r) >= after)) {
				continue
			}
			if u := opts.Until; u > 0 && !m.bugs.untilIgnored && ((!opts.Backwards && k(r) > u) || (opts.Backwards && k(r) < u)) {
				return
			}
			if m.bugs.limitBeforeFilter {
				n++
			}
			if !m.matches(r, opts.Filter) {
				continue
			}
			if !m.bugs.limitBeforeFilter {
				n++
			}
			if err := ctx.Err(); err != nil {
				yield(eventstore.Recorded{}, err)
				return
			}
			if m.bugs.omitShiftsFields && opts.Omit&eventstore.FieldID != 0 {
				r.ID, r.Type = r.Type, "" // the type read into the omitted ID's place
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (m *memStore) Watch(ctx context.Context, streamID string, opts eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	if err := m.enter(ctx, func() error { return validate.Filter(streamID, opts.Filter) }); err != nil {
		return watch.ErrorSeq(err)
	}
	k := key(streamID)
	skipped := false
	live := false
	repeated := false
	page := func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.db.mu.Lock()
		defer m.db.mu.Unlock()
		if m.closed {
			return nil, eventstore.ErrClosed
		}
		from := after
		if m.bugs.watchRepeatsLast && live && from > 0 {
			from--
		}
		if m.bugs.joinRepeats && live && !repeated && from > 0 && m.liveWatchers.Load() > 1 {
			repeated = true
			from--
		}
		filter := opts.Filter
		if m.bugs.liveIgnoresMetadata && live {
			filter.Metadata = nil
		}
		if m.bugs.watchWaitsRemoved && m.nextRemoved(streamID, from) {
			return nil, nil // as if the next key were still to commit
		}
		var out []eventstore.Recorded
		var found int
		for _, r := range m.list(streamID) {
			if k(r) > from && (m.matches(r, filter) || (m.bugs.liveIgnoresFilter && live)) {
				if found++; len(out) < limit {
					out = append(out, r)
				}
			}
		}
		if m.bugs.behindSkipsAhead && live && found > watch.TailWindowEvents {
			out = nil
			for _, r := range m.list(streamID) {
				if k(r) > from && m.matches(r, filter) {
					if found--; found < watch.TailWindowEvents && len(out) < limit {
						out = append(out, r)
					}
				}
			}
		}
		if len(out) < limit && !live {
			live = true // the next page is read after a wake
			m.liveWatchers.Add(1)
		}
		if m.bugs.watchSkipsOne && after > 0 && len(out) > 0 && !skipped {
			skipped = true
			out = out[1:]
		}
		return out, nil
	}
	return func(yield func(eventstore.Recorded, error) bool) {
		if ctx.Err() != nil {
			return
		}
		after, fromEnd := opts.From.Cursor()
		if m.bugs.zeroStartIsEnd && opts.From == (eventstore.Start{}) {
			fromEnd = true
		}
		if fromEnd {
			var err error
			if after, err = m.present(streamID); err != nil {
				yield(eventstore.Recorded{}, err)
				return
			}
		}
		if m.bugs.pastEndEnds && after >= math.MaxInt64 {
			return
		}
		for r, err := range watch.Follow(ctx, m.n, after, page, k, watch.FollowPageSize) {
			if !yield(r, err) {
				return
			}
		}
		if m.bugs.cancelYieldsError && ctx.Err() != nil {
			yield(eventstore.Recorded{}, ctx.Err())
		}
	}
}

// present returns the key of the last event of a stream, where a watch
// from the present starts.
func (m *memStore) present(streamID string) (uint64, error) {
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed {
		return 0, eventstore.ErrClosed
	}
	if streamID == eventstore.AllStreams {
		if n := len(m.db.events); n > 0 {
			return m.db.events[n-1].Position, nil
		}
		return 0, nil
	}
	list := m.list(streamID)
	k := key(streamID)
	if len(list) == 0 || m.db.deleted[streamID] {
		return m.version(streamID), nil
	}
	switch {
	case len(list) == 0:
		return 0, nil
	case m.bugs.presentOffByOne && len(list) > 1:
		return k(list[len(list)-2]), nil
	}
	return k(list[len(list)-1]), nil
}

func (m *memStore) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if err := m.enter(ctx, func() error { return validate.StreamID(streamID) }); err != nil {
		return eventstore.StreamInfo{}, err
	}
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed {
		return eventstore.StreamInfo{}, eventstore.ErrClosed
	}
	info := eventstore.StreamInfo{StreamID: streamID}
	list := m.list(streamID)
	if len(list) == 0 && m.bugs.missingInfoError {
		return info, eventstore.ErrNotFound
	}
	if streamID != eventstore.AllStreams {
		info.Version = m.version(streamID)
		info.Deleted = m.db.deleted[streamID]
	} else if n := len(m.db.events); n > 0 {
		info.Position = m.db.events[n-1].Position // the highest handed out
	}
	if len(list) > 0 {
		last := list[len(list)-1]
		if streamID != eventstore.AllStreams {
			info.Position = last.Position
		}
		info.Count = uint64(len(list))
		info.LastTime = last.Time
	}
	if m.bugs.infoCountsRemoved && streamID != eventstore.AllStreams {
		info.Count = uint64(len(m.db.streams[streamID]))
	}
	return info, nil
}

func snapName(name string) string {
	if name == "" {
		return eventstore.DefaultSnapshotName
	}
	return name
}

func (m *memStore) SaveSnapshot(ctx context.Context, s eventstore.Snapshot) error {
	if err := m.enter(ctx, func() error { return validate.Snapshot(s, 0) }); err != nil {
		return err
	}
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed {
		return eventstore.ErrClosed
	}
	if !m.bugs.snapshotPastHead {
		var head uint64
		if s.StreamID != eventstore.AllStreams {
			head = m.version(s.StreamID)
		} else if n := len(m.db.events); n > 0 {
			head = m.db.events[n-1].Position
		}
		if err := validate.SnapshotHead(s, head); err != nil {
			return err
		}
	}
	if m.db.deleted[s.StreamID] && !m.bugs.snapshotAfterDelete {
		return &eventstore.StreamDeletedError{StreamID: s.StreamID, Version: m.version(s.StreamID)}
	}
	s.Name = snapName(s.Name)
	k := [2]string{s.StreamID, s.Name}
	if old, ok := m.db.snaps[k]; ok && old.Version > s.Version && !m.bugs.olderSnapshotWins {
		return nil
	}
	s.Data = slices.Clone(s.Data)
	s.Time = m.storedTime(time.Now())
	m.db.snaps[k] = s
	return nil
}

func (m *memStore) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	err := m.enter(ctx, func() error { return validate.Snapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0) })
	if err != nil {
		return eventstore.Snapshot{}, err
	}
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed {
		return eventstore.Snapshot{}, eventstore.ErrClosed
	}
	s, ok := m.db.snaps[[2]string{streamID, snapName(name)}]
	if !ok {
		return eventstore.Snapshot{}, eventstore.ErrNotFound
	}
	return s, nil
}

func (m *memStore) FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error) {
	if err := m.enter(ctx, func() error { return validate.EventID(eventID) }); err != nil {
		return eventstore.Recorded{}, err
	}
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	if m.closed {
		return eventstore.Recorded{}, eventstore.ErrClosed
	}
	in, ok := m.db.ids[eventID]
	if !ok {
		if m.bugs.findMissingIsZero {
			return eventstore.Recorded{}, nil
		}
		return eventstore.Recorded{}, fmt.Errorf("event %q: %w", eventID, eventstore.ErrNotFound)
	}
	list := m.db.streams[in.stream]
	if m.bugs.findReturnsLast {
		return m.db.events[list[len(list)-1]], nil
	}
	if m.db.gone[list[in.version-1]] { // kept by deletedIDRetry only
		return eventstore.Recorded{}, fmt.Errorf("event %q: %w", eventID, eventstore.ErrNotFound)
	}
	return m.db.events[list[in.version-1]], nil
}

func (m *memStore) Close() error {
	m.db.mu.Lock()
	defer m.db.mu.Unlock()
	m.closed = true
	if !m.bugs.closeKeepsWatches {
		m.n.Close()
	}
	return nil
}

// version returns a stream's version: its number of events ever stored
// (removed ones included: versions are never given out again); m.db.mu is
// held.
func (m *memStore) version(streamID string) uint64 {
	return uint64(len(m.db.streams[streamID]))
}

// remove marks a stream's events with versions below before (all when
// before is 0) removed; m.db.mu is held.
func (m *memStore) remove(streamID string, before uint64) {
	for i, idx := range m.db.streams[streamID] {
		v := uint64(i + 1)
		limit := v < before
		if m.bugs.truncateOffByOne {
			limit = v <= before
		}
		if m.db.gone[idx] || (before > 0 && !limit) {
			continue
		}
		m.db.gone[idx] = true
		m.db.live--
		if id := m.db.events[idx].ID; id != "" && !m.bugs.deletedIDRetry {
			delete(m.db.ids, id)
		}
	}
}

// lifecycleEnter is enter plus the closed check made under the lock; on
// success m.db.mu is held.
func (m *memStore) lifecycleEnter(ctx context.Context, valid func() error) error {
	if err := m.enter(ctx, valid); err != nil {
		return err
	}
	m.db.mu.Lock()
	if m.closed {
		m.db.mu.Unlock()
		return eventstore.ErrClosed
	}
	return nil
}

func (m *memStore) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	if err := m.lifecycleEnter(ctx, func() error { return validate.Delete(streamID, expected) }); err != nil {
		return err
	}
	defer m.db.mu.Unlock()
	v := m.version(streamID)
	if v == 0 {
		return fmt.Errorf("stream %q: %w", streamID, eventstore.ErrNotFound)
	}
	if !expected.Matches(v) && !m.bugs.deleteIgnoresExpect {
		return &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: v}
	}
	m.remove(streamID, 0)
	m.db.deleted[streamID] = true
	if !m.bugs.deleteKeepsSnapshots {
		for k := range m.db.snaps {
			if k[0] == streamID {
				delete(m.db.snaps, k)
			}
		}
	}
	return nil
}

func (m *memStore) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	if err := m.lifecycleEnter(ctx, func() error { return validate.Truncate(streamID, before) }); err != nil {
		return err
	}
	defer m.db.mu.Unlock()
	v := m.version(streamID)
	if len(m.db.streams[streamID]) == 0 {
		return fmt.Errorf("stream %q: %w", streamID, eventstore.ErrNotFound)
	}
	if m.db.deleted[streamID] {
		return &eventstore.StreamDeletedError{StreamID: streamID, Version: v}
	}
	head := v
	if m.bugs.truncateTakesAll {
		head = v + 1
	}
	if err := validate.TruncateHead(streamID, before, head); err != nil {
		return err
	}
	m.remove(streamID, before)
	return nil
}

func (m *memStore) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	err := m.lifecycleEnter(ctx, func() error { return validate.Snapshot(eventstore.Snapshot{StreamID: streamID, Name: name}, 0) })
	if err != nil {
		return err
	}
	defer m.db.mu.Unlock()
	for k := range m.db.snaps {
		if k[0] == streamID && (name == "" || k[1] == name || m.bugs.deleteSnapsIgnoresNm) {
			delete(m.db.snaps, k)
		}
	}
	return nil
}

// nextRemoved reports whether the first event (removed ones included)
// with a key past after was removed; m.db.mu is held.
func (m *memStore) nextRemoved(streamID string, after uint64) bool {
	idxs := m.db.streams[streamID]
	if streamID == eventstore.AllStreams {
		idxs = make([]int, len(m.db.events))
		for i := range idxs {
			idxs[i] = i
		}
	}
	k := key(streamID)
	for _, idx := range idxs {
		if k(m.db.events[idx]) > after {
			return m.db.gone[idx]
		}
	}
	return false
}
