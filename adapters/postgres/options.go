package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/optcheck"
)

// DefaultSchema is the PostgreSQL schema the store uses when WithSchema is
// not given.
const DefaultSchema = "esv2"

// DefaultPollInterval is the period of the safety-net poll of the head
// position (see WithPollInterval).
const DefaultPollInterval = time.Second

// DefaultMaxAppendSize is the default limit on the payload of one append
// (see WithMaxAppendSize).
const DefaultMaxAppendSize = 256 << 20

// maxAppendLimit is the largest value WithMaxAppendSize takes: a message
// to PostgreSQL (and pgx) must stay below 1 GiB, and append_batch's
// parameters grow with escaping (see appendSize).
const maxAppendLimit = 512 << 20

// DefaultGroupCommitLimit is the default cap on the events of one group
// commit (see WithGroupCommitLimit).
const DefaultGroupCommitLimit = 8192

// DefaultCloseTimeout is how long Close waits for the group commit in
// flight before cancelling it (see WithCloseTimeout).
const DefaultCloseTimeout = 5 * time.Second

// defaultGroupBytes caps the payload of one group commit: appends beyond
// it wait for the next group (one larger append goes alone). PostgreSQL
// and pgx refuse messages of 1 GiB or more.
const defaultGroupBytes = 64 << 20

// defaultResolveTimeout bounds the look-up of a group's outcome; see
// eventstore.ErrUnknownOutcome.
const defaultResolveTimeout = 10 * time.Second

// Option configures a Store; pass options to [Open], [New] or [Migrate].
// An option given a value it cannot take makes them fail with an error
// satisfying errors.Is(err, eventstore.ErrInvalidInput), before anything
// is sent to the database.
type Option func(*config) error

type config struct {
	schema  string
	migrate bool
	listen  bool
	// listenCfg is the LISTEN connection's configuration when
	// WithListenDSN gave one; nil means a copy of the pool's.
	listenCfg    *pgx.ConnConfig
	pollInterval time.Duration // 0: no poll (WithoutPoll)
	// notifyInterval is the least time between two NOTIFYs (see
	// WithNotifyInterval).
	notifyInterval time.Duration
	maxEventSize   int
	groupEvents    int
	// maxAppend and groupBytes cap an append's and a group's payload
	// (see appendSize); tests lower groupBytes.
	maxAppend  int
	groupBytes int
	// resolveTimeout bounds the look-up of a group's outcome after its
	// connection failed (see resolveGroup); tests lower it.
	resolveTimeout time.Duration
	closeTimeout   time.Duration
	logger         *slog.Logger
	keyCacheTTL    time.Duration // see WithKeyCacheTTL (keystore.go)
}

func defaultConfig() config {
	return config{
		schema:         DefaultSchema,
		listen:         true,
		pollInterval:   DefaultPollInterval,
		notifyInterval: DefaultNotifyInterval,
		maxEventSize:   eventstore.DefaultMaxEventSize,
		groupEvents:    DefaultGroupCommitLimit,
		maxAppend:      DefaultMaxAppendSize,
		groupBytes:     defaultGroupBytes,
		resolveTimeout: defaultResolveTimeout,
		closeTimeout:   DefaultCloseTimeout,
	}
}

// applyOptions applies opts to the defaults. Its error satisfies
// errors.Is(err, eventstore.ErrInvalidInput).
func applyOptions(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return config{}, fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err)
		}
	}
	return cfg, nil
}

// WithSchema sets the PostgreSQL schema holding the store's tables
// (default DefaultSchema). Several stores can share one database in
// different schemas; stores opened on the same schema share their events.
// name must be valid UTF-8 without NUL or '$', 1 to 63 bytes long.
func WithSchema(name string) Option {
	return func(c *config) error {
		if err := checkSchemaName(name); err != nil {
			return fmt.Errorf("postgres: WithSchema(%q): %w", name, err)
		}
		c.schema = name
		return nil
	}
}

// WithMigrate makes Open and New create or upgrade the schema (see
// Store.Migrate) before returning.
func WithMigrate() Option {
	return func(c *config) error {
		c.migrate = true
		return nil
	}
}

// WithListenDSN gives the connection string of the dedicated LISTEN
// connection, when it must differ from the pool's: LISTEN needs a session,
// so behind pgbouncer in transaction-pooling mode point it at PostgreSQL
// directly (or at a session-pooling port). dsn must parse as a pgx
// connection string.
func WithListenDSN(dsn string) Option {
	return func(c *config) error {
		if dsn == "" {
			return fmt.Errorf("postgres: WithListenDSN(%q): empty", dsn)
		}
		lc, err := pgx.ParseConfig(dsn)
		if err != nil {
			// pgx's error leaves the password out.
			return fmt.Errorf("postgres: WithListenDSN: %w", err)
		}
		c.listenCfg = lc
		return nil
	}
}

// WithoutListen disables LISTEN/NOTIFY: appends made by other processes
// are then seen by watchers at the next poll (see WithPollInterval).
// Appends made through this store still wake its watchers at once.
func WithoutListen() Option {
	return func(c *config) error {
		c.listen = false
		return nil
	}
}

// WithPollInterval sets the period of the poll of the head position that
// backs LISTEN up (default DefaultPollInterval). The poll wakes watchers
// only when the head moved. d must be positive; to turn the poll off, use
// WithoutPoll.
func WithPollInterval(d time.Duration) Option {
	return optcheck.WithHint(optcheck.Positive("postgres: WithPollInterval", d, func(c *config) { c.pollInterval = d }),
		"WithoutPoll turns the poll off")
}

// DefaultNotifyInterval is the least time between two NOTIFYs of a store
// (see WithNotifyInterval).
const DefaultNotifyInterval = 50 * time.Millisecond

// WithNotifyInterval sets the least time between two NOTIFYs the store
// sends to tell other processes of its appends (default
// DefaultNotifyInterval). A commit after a quiet moment is announced at
// once; under a steady stream of commits, one NOTIFY stands for those of
// the interval, so a watcher in another process learns of an append up
// to d late. Each NOTIFY costs the server a wake-up of every listening
// session, and several processes appending side by side, each announcing
// every commit, ran at 0.76-0.83x the rate of one process against
// 0.91-0.93x with 50 ms (cmd/esbench append_multiprocess). With 0 a
// NOTIFY follows each send at once: commits made while one is being sent
// share the next, which carries the newest position. d must not be
// negative.
func WithNotifyInterval(d time.Duration) Option {
	return optcheck.NonNegative("postgres: WithNotifyInterval", d, func(c *config) { c.notifyInterval = d })
}

// WithoutPoll turns the safety-net poll off: appends made by other
// processes then reach watchers through LISTEN alone, and a notification
// lost while the listener reconnects is made up for only by its wake-up
// after reconnecting.
func WithoutPoll() Option {
	return func(c *config) error {
		c.pollInterval = 0
		return nil
	}
}

// WithMaxEventSize lowers or raises the limit on one event's data plus
// metadata (default eventstore.DefaultMaxEventSize). n must be positive.
func WithMaxEventSize(n int) Option {
	return optcheck.Positive("postgres: WithMaxEventSize", n, func(c *config) { c.maxEventSize = n })
}

// WithMaxAppendSize sets the limit on the payload of one append: the
// sum over its events of data, metadata, type and ID, plus 64 bytes per
// event (default DefaultMaxAppendSize, 256 MiB). A larger append is
// refused with an *eventstore.ValidationError before anything is sent:
// split it into several appends. bytes must be positive and at most 512
// MiB (a message to PostgreSQL must stay below 1 GiB).
func WithMaxAppendSize(bytes int) Option {
	return optcheck.WithHint(optcheck.PositiveAtMost("postgres: WithMaxAppendSize", bytes, maxAppendLimit, func(c *config) { c.maxAppend = bytes }),
		"512 MiB")
}

// WithGroupCommitLimit caps the number of events the writer commits in
// one transaction when grouping concurrent appends (default
// DefaultGroupCommitLimit). A single append larger than the limit is
// still committed whole, alone. events must be at least 1; 1 commits
// every append on its own.
func WithGroupCommitLimit(events int) Option {
	return optcheck.AtLeast1("postgres: WithGroupCommitLimit", events, func(c *config) { c.groupEvents = events })
}

// WithCloseTimeout sets how long Close lets the group commit in flight
// finish before it cancels it (default DefaultCloseTimeout). The appends
// of a cancelled group get eventstore.ErrClosed when it certainly stored
// nothing, else their true result or eventstore.ErrUnknownOutcome. d must
// not be negative; 0 cancels at once.
func WithCloseTimeout(d time.Duration) Option {
	return optcheck.NonNegative("postgres: WithCloseTimeout", d, func(c *config) { c.closeTimeout = d })
}

// checkSchemaName refuses schema names PostgreSQL would not keep as given:
// empty, with a NUL byte, or longer than its 63-byte identifier limit
// (it would silently truncate them, and two long names could meet); and
// names with a '$', which could end the dollar-quoted function bodies of
// the migrations.
func checkSchemaName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 63:
		return fmt.Errorf("%d bytes is longer than PostgreSQL's limit of 63", len(name))
	case strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name):
		return errors.New("not valid UTF-8 without NUL")
	case strings.IndexByte(name, '$') >= 0:
		// The migrations splice the name into function bodies quoted
		// with dollar tags ($fn$): a name holding one would end them.
		return errors.New("contains '$', which this package does not allow in schema names")
	}
	return nil
}

// WithLogger makes the store log what it meets on the way to l: append
// conflicts, watch retries and LISTEN reconnection attempts at Debug, a
// lost LISTEN connection and appends of unknown outcome at Warn, database
// errors that fail an append or end a watch at Error. Without it (or with
// nil) the store logs nothing. Pass the same logger to the repository
// (aggregate.Config.Logger) and to subscriptions (subscription.WithLogger)
// for one consistent log.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}
