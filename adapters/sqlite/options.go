package sqlite

import (
	"log/slog"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/optcheck"
)

// Option configures a Store; pass options to [Open].
type Option func(*options) error

type options struct {
	maxEventSize int
	readers      int
	pollInterval time.Duration
	busyTimeout  time.Duration
	maxGroup     int
	logger       *slog.Logger
	keyCacheTTL  time.Duration // see WithKeyCacheTTL (keystore.go)
}

func defaultOptions() options {
	return options{
		maxEventSize: eventstore.DefaultMaxEventSize,
		readers:      4,
		pollInterval: 5 * time.Millisecond,
		busyTimeout:  5 * time.Second,
		maxGroup:     256,
	}
}

// WithMaxEventSize sets the largest event accepted, in bytes of Data plus
// metadata keys and values. The default is
// [eventstore.DefaultMaxEventSize] (1 MiB); larger events are refused with
// [eventstore.ErrInvalidInput]. n must be positive.
func WithMaxEventSize(n int) Option {
	return optcheck.Positive("sqlite: WithMaxEventSize", n, func(o *options) { o.maxEventSize = n })
}

// WithReaders sets the number of reader connections (default 4). Reads,
// Info and watch pages use them; appends and snapshot saves use the single
// writer connection. n must be at least 1.
func WithReaders(n int) Option {
	return optcheck.AtLeast1("sqlite: WithReaders", n, func(o *options) { o.readers = n })
}

// WithPollInterval sets how often the store's single poller checks
// PRAGMA data_version to notice appends made by other processes to the same
// file (default 5ms). It bounds the latency with which watchers see such
// appends; appends made through this Store wake watchers at once. The
// poller does not run for in-memory stores, which no other process can
// reach. d must be positive.
func WithPollInterval(d time.Duration) Option {
	return optcheck.Positive("sqlite: WithPollInterval", d, func(o *options) { o.pollInterval = d })
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another connection or process before failing with [ErrBusy] (default
// 5s). It is SQLite's busy_timeout; it matters when several processes write
// to the same file. d must not be negative.
func WithBusyTimeout(d time.Duration) Option {
	return optcheck.NonNegative("sqlite: WithBusyTimeout", d, func(o *options) { o.busyTimeout = d })
}

// WithMaxGroupSize caps how many queued requests (appends and snapshot
// saves) the writer commits together in one transaction (default 256).
// 1 disables group commit: every request gets its own transaction. n must
// be at least 1.
func WithMaxGroupSize(n int) Option {
	return optcheck.AtLeast1("sqlite: WithMaxGroupSize", n, func(o *options) { o.maxGroup = n })
}

// WithLogger makes the store log what it meets on the way to l: append
// conflicts and watch retries at Debug, appends of unknown outcome at Warn,
// database errors that fail an append or end a watch at Error (see
// [driver.Config]). Without it (or with nil) the store logs nothing. Pass
// the same logger to the repository (aggregate.Config.Logger) and to
// subscriptions (subscription.WithLogger) for one consistent log.
//
// [driver.Config]: https://pkg.go.dev/github.com/esv2/esv2/eventstore/driver#Config
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}
