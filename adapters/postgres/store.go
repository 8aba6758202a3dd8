package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	"github.com/esv2/esv2/internal/validate"
)

var _ eventstore.Store = (*Store)(nil)

var (
	_ driver.Driver      = (*pgDriver)(nil)
	_ driver.Listener    = (*pgDriver)(nil)
	_ driver.EventFinder = (*pgDriver)(nil)
)

// Store is a PostgreSQL event store. It is safe for concurrent use; create
// it with Open or New and release it with Close.
//
// The methods of [eventstore.Store] (Append, Read, Watch, Info, the
// snapshots, FindEvent, Stream and Close) come from the front every
// adapter shares ([driver.Front]), so their checks, validation, paging
// and watching are those of every esv2 store; this package adds the
// methods below, which only PostgreSQL has.
type Store struct {
	*driver.Front
	d    *pgDriver
	subs *subBackend
	keys *codec.KeyCache // see KeyStore
}

// pgDriver is the PostgreSQL driver under the front: it talks to the
// database, and nothing else (see package eventstore/driver).
type pgDriver struct {
	pool     *pgxpool.Pool
	ownsPool bool
	cfg      config

	schema  string // sanitized, ready to splice into SQL
	lockKey int64  // pg_advisory_xact_lock key serialising appends
	channel string // NOTIFY channel

	q queries

	// notices is where the listener, the poll and the writer report
	// appends of other processes; set by Listen, which the front calls
	// before the goroutines start.
	notices driver.Notices
	// listenCfg configures the LISTEN connection; nil without LISTEN.
	listenCfg *pgx.ConnConfig

	head atomic.Uint64 // the settled head: no event at or below it can still commit
	seen atomic.Uint64 // highest position known committed (see settle)
	// unknowns counts the changes of unknown positions (unknownChange).
	unknowns atomic.Uint64

	settleKick chan struct{} // wakes settle

	// announceTop is the newest position this store committed, which
	// the announcer NOTIFYs; announced, the last it sent (its own, and
	// Close's after it stopped).
	announceTop  atomic.Uint64
	announced    atomic.Uint64
	announceKick chan struct{}
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
	groups, appends, events, connects atomic.Uint64
	outcomeChecks, unknownOutcomes    atomic.Uint64
	// polls counts the head polls done, notes the notifications the
	// listener received, changes the times the driver told the front of
	// others' appends (tests).
	polls, notes, changes atomic.Uint64

	bgCtx    context.Context
	bgCancel context.CancelFunc
	// stopCtx outlives bgCtx during Close: the look-up of a cancelled
	// group's outcome runs under it (see writer.close).
	stopCtx    context.Context
	stopCancel context.CancelFunc
	bg         sync.WaitGroup

	closed atomic.Bool

	// listenerPID is the backend PID of the LISTEN connection (0 when not
	// connected); tests terminate it to exercise reconnection.
	listenerPID atomic.Uint32
	// listening is signalled each time the listener has (re)subscribed.
	listening chan struct{}

	// locks holds the connections of stream locks (see lockPool), made
	// at the first LockStream, and held the locks LockStream returned
	// that are not unlocked yet (see closeLocks); lockMu guards both.
	lockMu sync.Mutex
	locks  *pgxpool.Pool
	held   map[*heldLock]struct{}
}

// Open connects to the database at dsn with a pgxpool.Pool owned by the
// store (Close closes it) and returns the store. See New for the rest.
//
// The pool's sessions run with PostgreSQL's JIT compilation off unless
// dsn sets jit itself (e.g. "...&jit=on"): see [JITOff].
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	if err := validate.Context(ctx); err != nil {
		return nil, err
	}
	cfg, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's error leaves the password out.
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	JITOff(pcfg)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	s, err := newStore(ctx, pool, true, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// New returns a store over pool, which stays the caller's: Close does not
// close it. Give the pool's config to [JITOff] before making the pool,
// unless its sessions run with jit off already. The schema is migrated
// first when WithMigrate is given; otherwise it must already be at the
// version this package writes. A
// schema written by a newer version of this package is refused with a
// *SchemaVersionError. An option given a value it cannot take is refused
// with an error satisfying errors.Is(err, eventstore.ErrInvalidInput).
//
// The store starts a writer goroutine (group commit), a LISTEN
// connection (unless WithoutListen) and a poller (unless WithoutPoll);
// Close stops them.
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if err := validate.Context(ctx); err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, &eventstore.ValidationError{Field: "pool", Index: -1, Reason: "nil"}
	}
	cfg, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, pool, false, cfg)
}

// JITOff sets the sessions of pools made from cfg to run with
// PostgreSQL's JIT compilation off (the run-time parameter jit), unless
// cfg sets jit already. Open does it for the pool it makes; call it on the
// config of a pool given to New.
//
// The store's queries are short: a page of a read is at most 4,096 rows,
// an append a few statements. PostgreSQL decides to compile a query by
// the planner's cost estimate, which for a stream's page grows with the
// stream (a page's LIMIT is hidden from the planner, see
// streamPageLimit), and in a stream of 10,000,000 events passed
// jit_above_cost: every 4,096-event page was compiled first, which took
// longer than reading it (esbench -backend postgres -events 10000000
// read_stream, December 2026: 558,640 events/s with jit=on in the DSN,
// 1,824,143 with it off).
func JITOff(cfg *pgxpool.Config) {
	if cfg == nil || cfg.ConnConfig == nil {
		return
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
}

func newStore(ctx context.Context, pool *pgxpool.Pool, owns bool, cfg config) (*Store, error) {
	d := &pgDriver{
		pool:      pool,
		ownsPool:  owns,
		cfg:       cfg,
		schema:    pgx.Identifier{cfg.schema}.Sanitize(),
		lockKey:   advisoryKey("append", cfg.schema),
		channel:   channelName(cfg.schema),
		listening: make(chan struct{}, 1),
		writerID:  newWriterID(),

		settleKick:   make(chan struct{}, 1),
		announceKick: make(chan struct{}, 1),
	}
	d.q = buildQueries(d.schema)
	if cfg.migrate {
		if err := migrate(ctx, pool, cfg.schema); err != nil {
			return nil, err
		}
	} else if err := d.checkVersion(ctx); err != nil {
		return nil, err
	}
	var head uint64
	if err := pool.QueryRow(ctx, d.q.head, d.lockKey).Scan(&head); err != nil {
		return nil, translateError(err, opErr("read head"))
	}
	d.head.Store(head)
	d.seen.Store(head)
	// Outcome rows of stores that never closed (best effort; see
	// queries.dropOutcomes).
	_, _ = pool.Exec(ctx, d.q.dropOutcomes)
	if cfg.listen {
		d.listenCfg = cfg.listenCfg
		if d.listenCfg == nil {
			d.listenCfg = pool.Config().ConnConfig.Copy()
		}
	}

	d.stopCtx, d.stopCancel = context.WithCancel(context.WithoutCancel(ctx))
	d.bgCtx, d.bgCancel = context.WithCancel(d.stopCtx)
	d.writer = newWriter(d)
	// Read-ahead was this adapter's before the front took it over: the
	// server reads the next page while the caller's loop runs. New calls
	// Listen, which sets d.notices before the writer, which reports to
	// it, starts.
	front := driver.New(d, driver.Config{MaxEventSize: cfg.maxEventSize, MaxPageRows: maxReadPage, ReadAhead: true, Logger: cfg.logger})
	d.bg.Go(d.writer.run)
	d.bg.Go(func() { d.announcer(d.bgCtx) })
	return &Store{Front: front, d: d, subs: newSubBackend(d), keys: codec.NewKeyCache(newKeyTable(d), cfg.keyCacheTTL, 0)}, nil
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
	// OutcomeChecks counts the groups whose connection failed after they
	// were sent, so that the writer looked their outcome up; UnknownOutcomes
	// those whose outcome it could not learn (their appends got
	// eventstore.ErrUnknownOutcome).
	OutcomeChecks, UnknownOutcomes uint64
}

// Stats returns the store's counters; they make group commit, LISTEN
// reconnections and outcome look-ups observable.
func (s *Store) Stats() Stats {
	d := s.d
	return Stats{
		Appends:          d.appends.Load(),
		Events:           d.events.Load(),
		Commits:          d.groups.Load(),
		ListenerConnects: d.connects.Load(),
		OutcomeChecks:    d.outcomeChecks.Load(),
		UnknownOutcomes:  d.unknownOutcomes.Load(),
	}
}

// Pool returns the connection pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.d.pool }

// Schema returns the name of the PostgreSQL schema the store uses.
func (s *Store) Schema() string { return s.d.cfg.schema }

// Close stops the writer (appends not yet taken get eventstore.ErrClosed;
// the group being committed gets WithCloseTimeout to finish, see
// writer.close), the listener and the poller, fences the writer's outcome
// row, and closes the pool if Open made it. A call that Close cuts short
// gets ErrClosed. The front calls it once, after ending its watchers.
func (d *pgDriver) Close() error {
	d.closed.Store(true)
	d.writer.close(d.cfg.closeTimeout, d.bgCancel, d.stopCancel)
	d.stopCancel() // bgCtx too
	d.bg.Wait()
	// The last commits' NOTIFY, if the announcer had not sent it.
	if top := d.announceTop.Load(); top > d.announced.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = d.pool.Exec(ctx, d.q.notifyCall, d.channel, strconv.FormatUint(top, 10))
		cancel()
	}
	// Fence the writer's outcome row for good (see
	// queries.retireOutcome). Best effort: if it fails, the row still
	// holds the last token, which fences every group the writer did not
	// report as committed but one that was never looked up, and those
	// got ErrUnknownOutcome.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = d.pool.Exec(ctx, d.q.retireOutcome, d.writerID)
	cancel()
	d.closeLocks()
	if d.ownsPool {
		d.pool.Close()
	}
	return nil
}

// advanceHead records that position h is committed and reports whether
// it is news.
func (d *pgDriver) advanceHead(h uint64) bool { return raise(&d.head, h) }

// raise sets a to h if h is higher, and reports whether it did.
func raise(a *atomic.Uint64, h uint64) bool {
	for {
		cur := a.Load()
		if h <= cur {
			return false
		}
		if a.CompareAndSwap(cur, h) {
			return true
		}
	}
}

// ownCommitted records that this store's group committed the written
// positions ending at top. When they follow the settled head directly,
// nothing below top can still commit and the head moves to top (the front
// wakes the group's own watchers). Otherwise another process's group
// holds positions between, or one rolled back and left them unused: the
// settler finds out (see settle). The caller holds commitMu.
func (d *pgDriver) ownCommitted(top, written uint64) {
	d.see(top)
	if !d.head.CompareAndSwap(top-written, top) {
		d.unsettled()
	}
	// Last: the listener, getting this NOTIFY back, finds the head
	// recorded and takes it for no news (see notified).
	d.announce(top)
}

// announce has the announcer tell other processes (NOTIFY) that this
// store committed up to position top.
func (d *pgDriver) announce(top uint64) {
	raise(&d.announceTop, top)
	select {
	case d.announceKick <- struct{}{}:
	default:
	}
}

// announcer sends the NOTIFY of this store's commits: the newest
// position committed, once per send, however many groups committed while
// the last send was under way. PostgreSQL serialises the COMMITs of
// transactions that NOTIFY (a lock held until the commit's WAL flush is
// done, to keep the notification queue in commit order), so a NOTIFY in
// the group's transaction would undo the side-by-side commits of several
// processes (migrations/0011); and sent from the writer after each
// COMMIT it cost the writer a transaction per group (append_multiprocess
// 0.61-0.68x against 0.80-0.87x without it). Each send is a transaction
// of its own that does not wait for its WAL flush (notifications do not
// outlive a crash anyway). A NOTIFY lost to a failure is retried; one
// lost to a crash is made up for by the other stores' polls.
//
// Sends are at least WithNotifyInterval apart: each NOTIFY costs the
// server a wake-up of every listening session (with 5 listeners, 4
// sessions committing side by side and each sending a NOTIFY after its
// commit ran at 0.50-0.73x the rate of the same commits without;
// pgbench), so under a steady stream of commits one NOTIFY stands for
// several. A commit after a quiet moment is announced at once.
func (d *pgDriver) announcer(ctx context.Context) {
	backoff := listenMinBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.announceKick:
		}
		for top := d.announceTop.Load(); top > d.announced.Load(); top = d.announceTop.Load() {
			if _, err := d.pool.Exec(ctx, d.q.notifyCall, d.channel, strconv.FormatUint(top, 10)); err != nil {
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, listenMaxBackoff)
				continue
			}
			backoff = listenMinBackoff
			d.announced.Store(top)
			// Commits within the interval of this send share the next
			// one (WithNotifyInterval).
			if !sleep(ctx, d.cfg.notifyInterval) {
				return
			}
		}
	}
}

// see records that position h is committed.
func (d *pgDriver) see(h uint64) { raise(&d.seen, h) }

// unknownChange wakes every watcher for appends of other processes whose
// positions are not known (missed while the listener was away), and makes
// their next page of the whole log ask for the safe head (see ReadPage).
func (d *pgDriver) unknownChange() {
	d.unknowns.Add(1)
	d.othersAppended()
}

// unsettled wakes the settler.
func (d *pgDriver) unsettled() {
	select {
	case d.settleKick <- struct{}{}:
	default:
	}
}

// notified is the listener's: another session committed up to position
// h. It reports whether that may be news to the watchers (h is past the
// settled head); the settler then follows the head until it reaches h.
// This store's own NOTIFY is sent after its commit was recorded (see
// announce), so it is no news unless another process's group drew
// positions below it: it need not wait for the writer (commitMu), which
// holds it for a whole group.
func (d *pgDriver) notified(h uint64) bool {
	d.see(h)
	if h <= d.head.Load() {
		return false
	}
	d.unsettled()
	return true
}

// settle moves the settled head up to the highest position seen
// committed: while that is past the head, it reads the safe head, after
// 50 ms and then twice as long each time up to a second, and wakes every
// watcher when the head moves. Commits are reported by their NOTIFY as
// they come, and wake the watchers themselves; this catches what no
// NOTIFY reports, a group that rolled back below positions already
// committed, which is rare: so it asks seldom (each ask reads pg_locks,
// which holds up the lock manager; asking every 5 ms cost several
// processes appending side by side a fifth of their rate).
func (d *pgDriver) settle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.settleKick:
		}
		wait := 50 * time.Millisecond
		for d.seen.Load() > d.head.Load() {
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, time.Second)
			h, err := d.safeHead(ctx)
			d.polls.Add(1)
			if err == nil && d.advanceHeadAfterCommit(h) {
				d.othersAppended()
			}
		}
	}
}

// advanceHeadAfterCommit is advanceHead for the listener and the poll:
// it waits for a group commit in flight to record its head first. Seeing
// the group's own NOTIFY (or its rows) before that, they would take this
// store's append for another process's and wake every watcher.
func (d *pgDriver) advanceHeadAfterCommit(h uint64) bool {
	d.commitMu.Lock()
	defer d.commitMu.Unlock()
	return d.advanceHead(h)
}

// othersAppended tells the front that other processes appended to
// streams this store does not know, so that it wakes every watcher.
func (d *pgDriver) othersAppended() {
	d.changes.Add(1)
	if d.notices != nil {
		d.notices.Changed()
	}
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

// sleep waits for dur or until ctx ends, and reports whether ctx is
// still live.
func sleep(ctx context.Context, dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
