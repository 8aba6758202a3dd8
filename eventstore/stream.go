package eventstore

import (
	"context"
	"iter"
)

// Stream is a handle on one stream of a store. It holds no state beyond the
// store and the ID, so it is cheap to make and safe for concurrent use.
type Stream struct {
	store Store
	id    string
}

// NewStream returns a handle on stream id of s. Adapters also offer it as
// their Stream method.
func NewStream(s Store, id string) *Stream { return &Stream{store: s, id: id} }

// ID returns the stream's ID.
func (s *Stream) ID() string { return s.id }

// Store returns the store the stream belongs to.
func (s *Stream) Store() Store { return s.store }

// Append appends events with the given expectation; see Store.Append.
func (s *Stream) Append(ctx context.Context, expected ExpectedVersion, events ...Event) (AppendResult, error) {
	return s.store.Append(ctx, s.id, expected, events...)
}

// Info describes the stream; see Store.Info.
func (s *Stream) Info(ctx context.Context) (StreamInfo, error) { return s.store.Info(ctx, s.id) }

// Version returns the stream's current version (0 when it has no events).
func (s *Stream) Version(ctx context.Context) (uint64, error) {
	info, err := s.store.Info(ctx, s.id)
	return info.Version, err
}

// Read streams the stream's events; see Store.Read.
func (s *Stream) Read(ctx context.Context, opts ReadOptions) iter.Seq2[Recorded, error] {
	return s.store.Read(ctx, s.id, opts)
}

// Watch follows the stream; see Store.Watch.
func (s *Stream) Watch(ctx context.Context, opts WatchOptions) iter.Seq2[Recorded, error] {
	return s.store.Watch(ctx, s.id, opts)
}

// SaveSnapshot stores a snapshot of the stream under name at version.
func (s *Stream) SaveSnapshot(ctx context.Context, name string, version uint64, schema string, data []byte) error {
	return s.store.SaveSnapshot(ctx, Snapshot{StreamID: s.id, Name: name, Version: version, Schema: schema, Data: data})
}

// LoadSnapshot returns the stream's latest snapshot under name, or an error
// satisfying errors.Is(err, ErrNotFound).
func (s *Stream) LoadSnapshot(ctx context.Context, name string) (Snapshot, error) {
	return s.store.LoadSnapshot(ctx, s.id, name)
}
