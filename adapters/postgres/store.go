package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// DefaultSchema is the PostgreSQL schema the store uses when WithSchema is
// not given.
const DefaultSchema = "esv2"

// DefaultPollInterval is the period of the safety-net poll of the head
// position (see WithPollInterval).
const DefaultPollInterval = time.Second

// Store is a PostgreSQL event store. It is safe for concurrent use; create
// it with Open or New and release it with Close.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	cfg      config

	schema  string // sanitized, ready to splice into SQL
	lockKey int64  // pg_advisory_xact_lock key serialising appends
	channel string // NOTIFY channel

	q queries

	notifiers *eventstore.Hub // every watcher, by stream
	head      atomic.Uint64   // highest position known committed
	// commitMu is held by the writer from sending a group until it has
	// recorded the group's head (see commitGroup), and by the listener
	// and the poll around their head checks.
	commitMu sync.Mutex
	writer   *writer
	// writerID names the store's row in append_outcomes, and tokens
	// numbers its groups (see commitGroup).
	writerID string
	tokens   atomic.Uint64
	// hooks land faults in exact windows (tests); nil otherwise.
	hooks *faultHooks
	// Counters for Stats.
	groups, appends, events, connects, watchRetries atomic.Uint64
	outcomeChecks, unknownOutcomes                  atomic.Uint64
	// polls counts the head polls done, notes the notifications the
	// listener received (tests).
	polls, notes atomic.Uint64

	bgCtx    context.Context
	bgCancel context.CancelFunc
	// stopCtx outlives bgCtx during Close: the look-up of a cancelled
	// group's outcome runs under it (see writer.close).
	stopCtx    context.Context
	stopCancel context.CancelFunc
	bg         sync.WaitGroup

	closed    atomic.Bool
	closeOnce sync.Once

	// listenerPID is the backend PID of the LISTEN connection (0 when not
	// connected); tests terminate it to exercise reconnection.
	listenerPID atomic.Uint32
	// listening is signalled each time the listener has (re)subscribed.
	listening chan struct{}
}

type config struct {
	schema       string
	migrate      bool
	listen       bool
	listenDSN    string
	pollInterval time.Duration
	maxEventSize int
	groupEvents  int
	// maxAppend and groupBytes cap an append's and a group's payload
	// (see appendSize); tests lower them.
	maxAppend  int
	groupBytes int
	// resolveTimeout bounds the look-up of a group's outcome after its
	// connection failed (see resolveGroup).
	resolveTimeout time.Duration
	closeTimeout   time.Duration
}

// faultHooks let tests land a fault in the exact window where a real one
// does harm (issue 9 item 1).
type faultHooks struct {
	// sent runs once a group's batch is sent, before its results are
	// read.
	sent func(pc *pgconn.PgConn)
	// committed runs once COMMIT's result has arrived; it returns what
	// the batch's Close is taken to report.
	committed func(pc *pgconn.PgConn, closeErr error) error
}

// defaultResolveTimeout bounds the look-up of a group's outcome; see
// eventstore.ErrUnknownOutcome.
const defaultResolveTimeout = 10 * time.Second

// DefaultMaxAppendSize is the default limit on the payload of one append
// (see WithMaxAppendSize).
const DefaultMaxAppendSize = 256 << 20

// defaultGroupBytes caps the payload of one group commit: appends beyond
// it wait for the next group (one larger append goes alone). PostgreSQL
// and pgx refuse messages of 1 GiB or more.
const defaultGroupBytes = 64 << 20

// Option configures a Store.
type Option func(*config)

// WithSchema sets the PostgreSQL schema holding the store's tables
// (default DefaultSchema). Several stores can share one database in
// different schemas; stores opened on the same schema share their events.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithMigrate makes Open and New create or upgrade the schema (see
// Store.Migrate) before returning.
func WithMigrate() Option { return func(c *config) { c.migrate = true } }

// WithListenDSN gives the connection string of the dedicated LISTEN
// connection, when it must differ from the pool's: LISTEN needs a session,
// so behind pgbouncer in transaction-pooling mode point it at PostgreSQL
// directly (or at a session-pooling port).
func WithListenDSN(dsn string) Option { return func(c *config) { c.listenDSN = dsn } }

// WithoutListen disables LISTEN/NOTIFY: appends made by other processes
// are then seen by watchers at the next poll (see WithPollInterval).
// Appends made through this store still wake its watchers at once.
func WithoutListen() Option { return func(c *config) { c.listen = false } }

// WithPollInterval sets the period of the poll of the head position that
// backs LISTEN up (default DefaultPollInterval). The poll wakes watchers
// only when the head moved. A value <= 0 disables it.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithMaxEventSize lowers or raises the limit on one event's data plus
// metadata (default eventstore.DefaultMaxEventSize).
func WithMaxEventSize(n int) Option { return func(c *config) { c.maxEventSize = n } }

// WithMaxAppendSize sets the limit on the payload of one append: the
// sum over its events of data, metadata, type and ID, plus 64 bytes per
// event (default DefaultMaxAppendSize, 256 MiB). A larger append is
// refused with an *eventstore.ValidationError before anything is sent:
// split it into several appends. Values above 512 MiB are lowered to it
// (a message to PostgreSQL must stay below 1 GiB).
func WithMaxAppendSize(bytes int) Option { return func(c *config) { c.maxAppend = bytes } }

// WithGroupCommitLimit caps the number of events the writer commits in
// one transaction when grouping concurrent appends (default 8192). A
// single append larger than the limit is still committed whole, alone.
func WithGroupCommitLimit(events int) Option { return func(c *config) { c.groupEvents = events } }

// DefaultCloseTimeout is how long Close waits for the group commit in
// flight before cancelling it (see WithCloseTimeout).
const DefaultCloseTimeout = 5 * time.Second

// WithCloseTimeout sets how long Close lets the group commit in flight
// finish before it cancels it (default DefaultCloseTimeout). The appends
// of a cancelled group get eventstore.ErrClosed when it certainly stored
// nothing, else their true result or eventstore.ErrUnknownOutcome. A
// value <= 0 cancels at once.
func WithCloseTimeout(d time.Duration) Option { return func(c *config) { c.closeTimeout = d } }

// Open connects to the database at dsn with a pgxpool.Pool owned by the
// store (Close closes it) and returns the store. See New for the rest.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	if err := eventstore.CheckContext(ctx); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	s, err := newStore(ctx, pool, true, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// New returns a store over pool, which stays the caller's: Close does not
// close it. The schema is migrated first when WithMigrate is given;
// otherwise it must already be at the version this package writes. A
// schema written by a newer version of this package is refused with a
// *SchemaVersionError.
//
// The store starts a writer goroutine (group commit), a LISTEN
// connection (unless WithoutListen) and a poller (unless disabled); Close
// stops them.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if err := eventstore.CheckContext(ctx); err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, &eventstore.ValidationError{Field: "pool", Index: -1, Reason: "nil"}
	}
	return newStore(ctx, pool, false, opts)
}

func newStore(ctx context.Context, pool *pgxpool.Pool, owns bool, opts []Option) (*Store, error) {
	cfg := config{
		schema:       DefaultSchema,
		listen:       true,
		pollInterval: DefaultPollInterval,
		maxEventSize: eventstore.DefaultMaxEventSize,
		groupEvents:  8192,
		maxAppend:    DefaultMaxAppendSize,
		groupBytes:   defaultGroupBytes,

		resolveTimeout: defaultResolveTimeout,
		closeTimeout:   DefaultCloseTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkSchemaName(cfg.schema); err != nil {
		return nil, err
	}
	if cfg.groupEvents < 1 {
		cfg.groupEvents = 1
	}
	switch {
	case cfg.maxAppend <= 0:
		cfg.maxAppend = DefaultMaxAppendSize
	case cfg.maxAppend > 512<<20:
		cfg.maxAppend = 512 << 20
	}
	s := &Store{
		pool:      pool,
		ownsPool:  owns,
		cfg:       cfg,
		schema:    pgx.Identifier{cfg.schema}.Sanitize(),
		lockKey:   advisoryKey("append", cfg.schema),
		channel:   channelName(cfg.schema),
		notifiers: eventstore.NewHub(),
		listening: make(chan struct{}, 1),
		writerID:  newWriterID(),
	}
	s.q = buildQueries(s.schema)
	if cfg.migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkVersion(ctx); err != nil {
		return nil, err
	}
	var head uint64
	if err := pool.QueryRow(ctx, s.q.head).Scan(&head); err != nil {
		return nil, translateError(err, opErr("read head"))
	}
	s.head.Store(head)
	// Outcome rows of stores that never closed (best effort; see
	// queries.dropOutcomes).
	_, _ = pool.Exec(ctx, s.q.dropOutcomes)

	var listenCfg *pgx.ConnConfig
	if cfg.listen {
		listenCfg = pool.Config().ConnConfig.Copy()
		if cfg.listenDSN != "" {
			c, err := pgx.ParseConfig(cfg.listenDSN)
			if err != nil {
				return nil, fmt.Errorf("postgres: listen DSN: %w", err)
			}
			listenCfg = c
		}
	}

	s.stopCtx, s.stopCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.bgCtx, s.bgCancel = context.WithCancel(s.stopCtx)
	s.writer = newWriter(s)
	s.bg.Go(s.writer.run)
	if listenCfg != nil {
		s.bg.Go(func() { s.listen(s.bgCtx, listenCfg) })
	}
	if cfg.pollInterval > 0 {
		s.bg.Go(func() { s.poll(s.bgCtx, cfg.pollInterval) })
	}
	return s, nil
}

// Stats counts what a Store has done since it was opened; see
// Store.Stats.
type Stats struct {
	// Appends is the number of append calls that stored events.
	Appends uint64
	// Events is the number of events they stored.
	Events uint64
	// Commits is the number of transactions the writer committed. With
	// group commit it is lower than Appends when appends arrive
	// concurrently.
	Commits uint64
	// ListenerConnects counts the LISTEN connection's successful
	// subscriptions: 1 plus the reconnections.
	ListenerConnects uint64
	// WatchRetries counts the pages that watches read again because their
	// connection was lost.
	WatchRetries uint64
	// OutcomeChecks counts the groups whose connection failed after they
	// were sent, so that the writer looked their outcome up; UnknownOutcomes
	// those whose outcome it could not learn (their appends got
	// eventstore.ErrUnknownOutcome).
	OutcomeChecks, UnknownOutcomes uint64
}

// Stats returns the store's counters; they make group commit and LISTEN
// reconnections observable.
func (s *Store) Stats() Stats {
	return Stats{
		Appends:          s.appends.Load(),
		Events:           s.events.Load(),
		Commits:          s.groups.Load(),
		ListenerConnects: s.connects.Load(),
		WatchRetries:     s.watchRetries.Load(),
		OutcomeChecks:    s.outcomeChecks.Load(),
		UnknownOutcomes:  s.unknownOutcomes.Load(),
	}
}

// Pool returns the connection pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the name of the PostgreSQL schema the store uses.
func (s *Store) Schema() string { return s.cfg.schema }

// Stream returns a handle on stream id.
func (s *Store) Stream(id string) *eventstore.Stream { return eventstore.NewStream(s, id) }

// Close stops the writer (appends not yet started fail with
// eventstore.ErrClosed; one being committed finishes), the listener and
// the poller, ends watchers with eventstore.ErrClosed, and closes the pool
// if Open made it. A Read under way yields eventstore.ErrClosed at its
// next page. Close is idempotent and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.writer.close(s.cfg.closeTimeout, s.bgCancel, s.stopCancel)
		s.stopCancel() // bgCtx too
		s.bg.Wait()
		// Fence the writer's outcome row for good (see
		// queries.retireOutcome). Best effort: if it fails, the row
		// still holds the last token, which fences every group the
		// writer did not report as committed but one that was never
		// looked up, and those got ErrUnknownOutcome.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = s.pool.Exec(ctx, s.q.retireOutcome, s.writerID)
		cancel()
		s.notifiers.Close()
		if s.ownsPool {
			s.pool.Close()
		}
	})
	return nil
}

// check returns ErrClosed after Close, else the context's error.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return eventstore.CheckContext(ctx)
}

// advanceHead records that position h is committed and reports whether
// it is news.
func (s *Store) advanceHead(h uint64) bool {
	for {
		cur := s.head.Load()
		if h <= cur {
			return false
		}
		if s.head.CompareAndSwap(cur, h) {
			return true
		}
	}
}

// checkSchemaName refuses schema names PostgreSQL would not keep as given:
// empty, with a NUL byte, or longer than its 63-byte identifier limit
// (it would silently truncate them, and two long names could meet); and
// names with a '$', which could end the dollar-quoted function bodies of
// the migrations.
func checkSchemaName(name string) error {
	switch {
	case name == "":
		return &eventstore.ValidationError{Field: "schema", Index: -1, Reason: "empty"}
	case len(name) > 63:
		return &eventstore.ValidationError{Field: "schema", Index: -1, Reason: fmt.Sprintf("%d bytes is longer than PostgreSQL's limit of 63", len(name))}
	case strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name):
		return &eventstore.ValidationError{Field: "schema", Index: -1, Reason: "not valid UTF-8 without NUL"}
	case strings.IndexByte(name, '$') >= 0:
		// The migrations splice the name into function bodies quoted
		// with dollar tags ($fn$): a name holding one would end them.
		return &eventstore.ValidationError{Field: "schema", Index: -1, Reason: "contains '$', which this package does not allow in schema names"}
	}
	return nil
}

// advanceHeadAfterCommit is advanceHead for the listener and the poll:
// it waits for a group commit in flight to record its head first. Seeing
// the group's own NOTIFY (or its rows) before that, they would take this
// store's append for another process's and wake every watcher.
func (s *Store) advanceHeadAfterCommit(h uint64) bool {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return s.advanceHead(h)
}

// newWriterID returns a random name for a store's row in append_outcomes.
func newWriterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// advisoryKey derives a stable 64-bit advisory-lock key for a purpose and
// schema, so that stores on different schemas of one database do not
// serialise each other.
func advisoryKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("esv2:" + purpose + ":" + schema))
	return int64(h.Sum64())
}

// channelName returns the NOTIFY channel of a schema. It is derived from a
// hash so that it stays a short identifier whatever the schema's name.
func channelName(schema string) string {
	h := fnv.New64a()
	h.Write([]byte("esv2:notify:" + schema))
	return fmt.Sprintf("esv2_%016x", h.Sum64())
}
