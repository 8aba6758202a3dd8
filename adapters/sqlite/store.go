package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/eventstore"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// schemaVersion is the version of the schema this package creates and
// reads, kept in PRAGMA user_version. Bump it with every schema change and
// migrate older versions in migrate.
const schemaVersion = 1

// schema creates the tables of schemaVersion. Positions use AUTOINCREMENT
// so that a position is never reused, even if rows were ever deleted by
// hand; the single writer makes rowid order commit order.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	event_id  TEXT,
	type      TEXT    NOT NULL,
	data      BLOB,
	metadata  TEXT,
	time      INTEGER NOT NULL,
	UNIQUE (stream_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (
	stream_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL,
	last_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	position  INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	last_time INTEGER NOT NULL
);
INSERT OR IGNORE INTO head (id, position, count, last_time) VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS snapshots (
	stream_id TEXT    NOT NULL,
	name      TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	schema    TEXT    NOT NULL,
	data      BLOB,
	time      INTEGER NOT NULL,
	PRIMARY KEY (stream_id, name)
) WITHOUT ROWID;
`

// Store is an event store in one SQLite database. It is safe for concurrent
// use. Create it with [Open] and release it with [Store.Close].
type Store struct {
	opts   options
	path   string
	memory bool

	writeDB *sql.DB   // one connection, owned by the writer goroutine
	wconn   *sql.Conn // the writer's connection
	readDB  *sql.DB   // the reader pool
	pollDB  *sql.DB   // the poller's dedicated connection (files only)
	poller  *poller   // files only

	// memMu orders the connections of an in-memory store: held by the
	// writer for each transaction and shared by each read (see
	// memlock.go). Nil for a file.
	memMu *sync.RWMutex

	notifiers *eventstore.Hub

	queue      chan *request
	closing    chan struct{}
	writerDone chan struct{}
	pollerDone chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error

	w writer // state of the writer goroutine

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // reader statements by SQL text

	appends   atomic.Uint64
	commits   atomic.Uint64
	events    atomic.Uint64
	snapshots atomic.Uint64
}

var _ eventstore.Store = (*Store)(nil)

// Stats counts what a Store has done since Open; see [Store.Stats].
type Stats struct {
	// Appends is the number of append requests that wrote events and were
	// committed.
	Appends uint64
	// Events is the number of events those appends stored.
	Events uint64
	// Snapshots is the number of snapshot saves committed.
	Snapshots uint64
	// Commits is the number of write transactions committed. With group
	// commit it is lower than Appends+Snapshots when requests arrive
	// concurrently.
	Commits uint64
}

// Stats returns counters of committed work; they make group commit
// observable (Commits < Appends under concurrency).
func (s *Store) Stats() Stats {
	return Stats{
		Appends:   s.appends.Load(),
		Events:    s.events.Load(),
		Snapshots: s.snapshots.Load(),
		Commits:   s.commits.Load(),
	}
}

// Open opens (creating if needed) the event store in the SQLite database at
// path, a file name or an SQLite "file:" URI. An empty path or ":memory:"
// opens a new in-memory database, private to this Store and shared by all
// of its connections; it is gone after Close.
//
// A file is put in WAL mode so that readers never block the writer; several
// processes may open the same file and append concurrently (writes take the
// database's write lock, waiting up to the busy timeout). The schema is
// created on first open. Open fails with [ErrNotDatabase] when the file is
// not an SQLite database and with [ErrSchemaVersion] when its schema was
// written by a newer esv2. A database opened read-only ("file:...?mode=ro")
// can be read and watched; writes fail with [ErrDatabase].
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if err := eventstore.CheckContext(ctx); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err)
		}
	}
	s := &Store{
		opts:       o,
		path:       path,
		memory:     path == "" || path == ":memory:",
		notifiers:  eventstore.NewHub(),
		queue:      make(chan *request, o.maxGroup),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		pollerDone: make(chan struct{}),
		stmts:      make(map[string]*sql.Stmt),
	}
	if err := s.open(ctx); err != nil {
		_ = s.closeDBs() // the open error is the one to report
		return nil, err
	}
	go s.writeLoop()
	if s.pollDB != nil {
		go s.poll()
	} else {
		close(s.pollerDone)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	busy := s.opts.busyTimeout.Milliseconds()
	var base string
	var writerPragmas, readerPragmas string
	if s.memory {
		// The memdb VFS gives one in-memory database per name, shared by
		// every connection of the process that opens that name, with real
		// locking between them (unlike shared-cache mode, whose table locks
		// fail with SQLITE_LOCKED instead of waiting). A random name makes
		// each Open a new database. It lives while a connection is open;
		// the writer holds one for the Store's lifetime.
		base = "file:/esv2-" + randomName() + "?vfs=memdb"
	} else {
		switch {
		case strings.HasPrefix(s.path, "file:") && strings.Contains(s.path, "?"):
			base = s.path // a URI with its own parameters (mode, vfs ...)
		case strings.HasPrefix(s.path, "file:"):
			base = s.path + "?"
		default:
			base = "file:" + escapePath(s.path) + "?"
		}
		writerPragmas = fmt.Sprintf("&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=journal_size_limit(%d)", walSizeLimit)
	}
	common := fmt.Sprintf("&_pragma=busy_timeout(%d)&_pragma=foreign_keys(0)", busy)
	readerPragmas = "&_pragma=query_only(1)"

	var err error
	s.writeDB, err = openPool(base+common+writerPragmas, 1)
	if err != nil {
		return translateError(err, nil)
	}
	s.wconn, err = s.writeDB.Conn(ctx)
	if err != nil {
		return openError(s.path, err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.w.prepare(ctx, s.wconn); err != nil {
		return openError(s.path, err)
	}
	if !s.memory {
		if s.w.walPath, err = walPath(ctx, s.wconn); err != nil {
			return openError(s.path, err)
		}
		s.w.busyTimeout = busy
	}

	if s.memory {
		s.memMu = new(sync.RWMutex)
	}
	s.readDB, err = openPool(base+common+readerPragmas, s.opts.readers)
	if err != nil {
		return translateError(err, nil)
	}
	if err := s.readDB.PingContext(ctx); err != nil {
		return openError(s.path, err)
	}

	if !s.memory {
		s.pollDB, err = openPool(base+common+readerPragmas, 1)
		if err != nil {
			return translateError(err, nil)
		}
		s.poller = &poller{s: s}
		if err := s.poller.prepare(ctx, s.pollDB); err != nil {
			return openError(s.path, err)
		}
		// The starting point is taken here, before Open returns: a watch
		// can only start afterwards, and its first read covers whatever
		// was committed before.
		if err := s.poller.version.QueryRowContext(ctx).Scan(&s.poller.last); err != nil {
			return openError(s.path, err)
		}
		if err := s.poller.head.QueryRowContext(ctx).Scan(&s.poller.seen); err != nil {
			return openError(s.path, err)
		}
	}
	return nil
}

func openError(path string, err error) error {
	if path == "" {
		path = ":memory:"
	}
	return fmt.Errorf("sqlite: open %q: %w", path, translateError(err, nil))
}

// migrate creates the schema in a new database and refuses one written by
// a newer version of this package. It runs in one write transaction so
// that processes opening a new file at once do not race.
func (s *Store) migrate(ctx context.Context) (err error) {
	c := s.wconn
	// The common case, an up-to-date schema, needs no write lock: opening
	// then neither waits for another process's writer nor fails on a
	// read-only database (mode=ro).
	done, err := s.checkSchema(ctx)
	if err != nil || done {
		return err
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return openError(s.path, err)
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// Another process may have created the schema meanwhile.
	if done, err = s.checkSchema(ctx); err != nil {
		return err
	}
	if !done {
		if _, err := c.ExecContext(ctx, schema); err != nil {
			return openError(s.path, err)
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return openError(s.path, err)
		}
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return openError(s.path, err)
	}
	return nil
}

// checkSchema reports whether the database has this package's schema, and
// refuses a newer one.
func (s *Store) checkSchema(ctx context.Context) (bool, error) {
	var v int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, openError(s.path, err)
	}
	if v > schemaVersion {
		return false, fmt.Errorf("sqlite: open %q: %w: the database has schema version %d, this package knows up to %d (upgrade esv2)",
			s.displayPath(), ErrSchemaVersion, v, schemaVersion)
	}
	return v == schemaVersion, nil
}

func (s *Store) displayPath() string {
	if s.memory {
		return ":memory:"
	}
	return s.path
}

// escapePath turns a file name into the path part of an SQLite URI.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '?', '#', '%':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var memCounter atomic.Uint64

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d", hex.EncodeToString(b[:]), memCounter.Add(1))
}

// Stream returns a handle on stream id of the store.
func (s *Store) Stream(id string) *eventstore.Stream { return eventstore.NewStream(s, id) }

// Close stops the writer and the poller and closes the database. Appends
// still queued get [eventstore.ErrClosed]; an append the writer has already
// taken gets its result. Active watchers end with ErrClosed, and every call
// after Close returns ErrClosed. Close is idempotent and safe to call
// concurrently.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.writerDone
		<-s.pollerDone
		s.notifiers.Close()
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	s.w.close()
	if s.poller != nil {
		errs = append(errs, s.poller.close())
	}
	if s.pollDB != nil {
		errs = append(errs, s.pollDB.Close())
	}
	if s.readDB != nil {
		errs = append(errs, s.readDB.Close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.writeDB != nil {
		errs = append(errs, s.writeDB.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return translateError(err, nil)
	}
	return nil
}

// poll is the store's single change detector for appends made by other
// processes: PRAGMA data_version changes when another connection commits
// to the file. One poll serves every watcher. When it changes, the poller
// reads which streams got events after the last position it had seen and
// wakes their watchers (and those of AllStreams).
func (s *Store) poll() {
	defer close(s.pollerDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	p := s.poller
	t := time.NewTicker(s.opts.pollInterval)
	defer t.Stop()
	for {
		var v int64
		if err := p.version.QueryRowContext(ctx).Scan(&v); err == nil {
			if p.last >= 0 && v != p.last {
				p.changed(ctx)
			}
			p.last = v
		}
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}

// pollBatch bounds the events the poller reads after a change; past it,
// every watcher is woken instead.
const pollBatch = 4096

// poller is the state of the poll goroutine. Its statements are prepared
// at Open (so that a failure shows there) on pollDB, whose single
// connection is the poller's own.
type poller struct {
	s                    *Store
	version, head, since *sql.Stmt
	seen                 int64 // highest position already notified; -1 if unknown
	last                 int64 // data_version at the last poll; -1 if unknown
	ids                  []string

	// afterWakeAll, when set (by tests only), runs right after the
	// poller woke every watcher and before it records what it has seen:
	// the window of issue 9 item 6.
	afterWakeAll atomic.Pointer[func()]
}

func (p *poller) prepare(ctx context.Context, db *sql.DB) error {
	for _, st := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&p.version, "PRAGMA data_version"},
		{&p.head, "SELECT position FROM head WHERE id = 1"},
		{&p.since, "SELECT position, stream_id FROM events WHERE position > ? ORDER BY position LIMIT ?"},
	} {
		var err error
		if *st.dst, err = db.PrepareContext(ctx, st.sql); err != nil {
			return err
		}
	}
	return nil
}

func (p *poller) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{p.version, p.head, p.since} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// changed wakes the watchers of the streams that got events after p.seen.
// The data version also changes with this Store's own commits (whose
// watchers the writer woke already) and with snapshot saves; waking a
// watcher needlessly costs it one read, never a missed event.
func (p *poller) changed(ctx context.Context) {
	if p.seen < 0 {
		var head int64
		if err := p.head.QueryRowContext(ctx).Scan(&head); err == nil {
			p.seen = head
		}
		p.wakeAll()
		return
	}
	rows, err := p.since.QueryContext(ctx, p.seen, pollBatch)
	if err != nil {
		p.s.notifiers.NotifyAll()
		return
	}
	defer rows.Close()
	p.ids = p.ids[:0]
	n := 0
	seen := p.seen
	for rows.Next() {
		var pos int64
		var id string
		if err := rows.Scan(&pos, &id); err != nil {
			p.s.notifiers.NotifyAll()
			return
		}
		n++
		seen = pos
		if len(p.ids) == 0 || p.ids[len(p.ids)-1] != id {
			p.ids = append(p.ids, id)
		}
	}
	if rows.Err() != nil {
		p.s.notifiers.NotifyAll()
		return
	}
	switch n {
	case 0:
		return
	case pollBatch:
		// Many events at once: skip to the head and wake everyone. The
		// head is read before the wake (issue 9 item 6): whatever commits
		// after the read gets a higher position, so the next poll finds
		// it. Read after the wake, a commit landing in between was marked
		// seen although the watchers may have read before it, and nobody
		// was woken for it.
		var head int64
		if err := p.head.QueryRowContext(ctx).Scan(&head); err == nil {
			seen = max(seen, head)
		}
		p.wakeAll()
	default:
		p.s.notifiers.Notify(p.ids)
	}
	p.seen = seen
}

// wakeAll wakes every watcher, for a change whose streams the poller does
// not list.
func (p *poller) wakeAll() {
	p.s.notifiers.NotifyAll()
	if f := p.afterWakeAll.Load(); f != nil {
		(*f)()
	}
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// openPool opens a database/sql pool of n connections that are never
// closed for age or idleness: an in-memory (memdb) database lives only as
// long as a connection to it is open, and reopening costs a schema check.
func openPool(dsn string, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}
