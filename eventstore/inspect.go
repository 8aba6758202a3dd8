package eventstore

import (
	"context"
	"time"
)

// Inspector is an optional ability of a store, found by type assertion:
// looking at the store as a whole, for operators' tools (the esv2
// command) rather than applications. Both of esv2's adapters implement it;
// its methods read the adapter's own tables, which only the adapter knows.
type Inspector interface {
	// ListStreams returns up to limit streams whose IDs start with
	// prefix and sort after after (by byte order), in that order: a page
	// of the store's streams; pass the last ID of one page as after to
	// get the next.
	ListStreams(ctx context.Context, prefix, after string, limit int) ([]StreamSummary, error)
	// Summary describes the whole store.
	Summary(ctx context.Context) (StoreSummary, error)
	// ListSnapshots returns the snapshots of a stream, by name.
	ListSnapshots(ctx context.Context, streamID string) ([]Snapshot, error)
	// Verify walks the whole store and returns every broken invariant it
	// finds (none for a sound store). Its error is for failing to look,
	// not for what it found.
	Verify(ctx context.Context) ([]Problem, error)
}

// StreamSummary is one stream of [Inspector.ListStreams].
type StreamSummary struct {
	StreamID string
	// Version is the stream's version, which is also its number of
	// events: versions are dense from 1.
	Version uint64
	// LastTime is the time of its last event.
	LastTime time.Time
}

// StoreSummary describes a store ([Inspector.Summary]).
type StoreSummary struct {
	Events    uint64
	Streams   uint64
	Snapshots uint64
	// Position is the last position (the all-streams log's head).
	Position uint64
	// Oldest and Newest are the times of the first and last events (zero
	// when the store is empty).
	Oldest, Newest time.Time
	// SizeBytes is the space the store takes on disk, as the database
	// reports it.
	SizeBytes int64
	// SchemaVersion is the version of the store's database schema.
	SchemaVersion int
}

// Problem is one broken invariant found by [Inspector.Verify].
type Problem struct {
	// Check names the invariant: one of the Check* constants.
	Check string
	// StreamID is the stream concerned, if one is.
	StreamID string
	// Position is the position of the event concerned, if one is.
	Position uint64
	// Detail says what was found and what was expected.
	Detail string
}

// The invariants Verify checks, as named in [Problem.Check].
const (
	// CheckSchema: the schema is at the version the adapter writes.
	CheckSchema = "schema"
	// CheckVersions: each stream's versions are 1, 2, 3 ... with no gap
	// or repeat.
	CheckVersions = "versions"
	// CheckPositions: within a stream, positions increase with versions,
	// and no position is at or past the store's high-water mark.
	CheckPositions = "positions"
	// CheckStreams: the streams table has one row per stream with events,
	// agreeing with them (version, last time), and none without events
	// but a deleted stream's tombstone, which has no events and no
	// snapshots.
	CheckStreams = "streams"
	// CheckHead: the store's head (last position, count, last time)
	// agrees with the events.
	CheckHead = "head"
	// CheckEventIDs: the unique index on event IDs exists and no ID is
	// stored twice.
	CheckEventIDs = "event-ids"
	// CheckStreamHash: each event's stored stream hash (by which consumer
	// groups select their partitions) is the hash of its stream ID.
	CheckStreamHash = "stream-hash"
	// CheckIntegrity: the database's own consistency check passes.
	CheckIntegrity = "integrity"
)
