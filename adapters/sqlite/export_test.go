package sqlite

import (
	"context"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// What the external tests (package sqlite_test) reach of the driver: the
// driver alone, without the front, to call its methods directly (and
// listen with a recorder of its notices), and the hooks that place a
// test's step inside the writer's or the poller's work.

// SchemaVersionForTest is the schema version this build writes.
const SchemaVersionForTest = schemaVersion

// PollBatch is the most events the poller reads after a change.
const PollBatch = pollBatch

// TestDriver is the SQLite driver opened on its own; its embedded methods
// are those of driver.Driver, driver.Listener and driver.EventFinder.
type TestDriver struct{ *drv }

// OpenDriver opens the driver at path with opts, as Open does before it
// builds the front. The caller calls Listen if it wants notices, and Close.
func OpenDriver(ctx context.Context, path string, opts ...Option) (TestDriver, error) {
	d, _, err := openDriver(ctx, path, opts...)
	return TestDriver{d}, err
}

// SetAfterWakeAll makes the poller run f right after it woke every watcher,
// before it records what it has seen; nil removes it.
func (d TestDriver) SetAfterWakeAll(f func()) {
	if f == nil {
		d.poller.afterWakeAll.Store(nil)
		return
	}
	d.poller.afterWakeAll.Store(&f)
}

// Queued returns the number of requests waiting in the writer's queue.
func (d TestDriver) Queued() int { return len(d.queue) }

// StartAppend submits an append of events to streamID with expectation
// Any and returns at once: taken reports whether the writer has taken the
// request (from then on it runs to its outcome), and the outcome arrives
// on done.
func (d TestDriver) StartAppend(ctx context.Context, streamID string, events ...eventstore.Event) (taken func() bool, done <-chan error) {
	r := &request{ctx: ctx, streamID: streamID, expected: eventstore.Any, events: events, done: make(chan result, 1)}
	out := make(chan error, 1)
	go func() { out <- d.submit(ctx, r).err }()
	return func() bool { return r.state.Load() == reqTaken }, out
}

// RawKeyStore returns s's key table without the cache in front of it.
func RawKeyStore(s *Store) codec.KeyStore { return keyTable{s.d} }
