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

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	"github.com/esv2/esv2/internal/validate"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Store is an event store in one SQLite database. It is safe for concurrent
// use. Create it with [Open] and release it with Close.
//
// Its [eventstore.Store] methods (Append, Read, Watch, Info, the snapshots,
// FindEvent, Stream and Close) come from the embedded [driver.Front], the
// one front every esv2 adapter shares, over this package's driver; Store
// adds what only SQLite has ([Store.Stats]).
type Store struct {
	*driver.Front
	d    *drv
	keys *codec.KeyCache // see KeyStore
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
// observable (Commits < Appends under concurrency). They are one
// consistent set: the writer adds each commit's counts at once, so a
// commit is never counted without its appends.
func (s *Store) Stats() Stats {
	s.d.statsMu.Lock()
	defer s.d.statsMu.Unlock()
	return s.d.stats
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
	d, o, err := openDriver(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	// MaxPageRows is readPageSize: pages past it would hold the reader's
	// lock longer for little gain (read.go). No read-ahead: SQLite runs
	// on the caller's own CPU, so a page fetched ahead competes with the
	// caller's loop instead of overlapping with it.
	// OwnNotices: the writer wakes the watchers of a group's streams at
	// its commit (append.go).
	f := driver.New(d, driver.Config{MaxEventSize: o.maxEventSize, MaxPageRows: readPageSize, OwnNotices: true, Logger: o.logger})
	return &Store{Front: f, d: d, keys: codec.NewKeyCache(keyTable{d}, o.keyCacheTTL, 0)}, nil
}

// drv is the SQLite driver under the front: the database's connections,
// the writer goroutine and the poller (see [driver.Driver] for what each
// method may assume).
type drv struct {
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

	queue      chan *request
	closing    chan struct{}
	writerDone chan struct{}
	listenMu   sync.Mutex    // orders Listen and Close
	pollerDone chan struct{} // nil until Listen starts the poller
	closed     atomic.Bool
	closeOnce  sync.Once
	notices    driver.Notices // from Listen, for the writer's own commits too
	closeErr   error

	w writer // state of the writer goroutine

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // reader statements by SQL text

	statsMu sync.Mutex
	stats   Stats // what the writer committed; see Store.Stats
}

var (
	_ driver.Driver      = (*drv)(nil)
	_ driver.Listener    = (*drv)(nil)
	_ driver.EventFinder = (*drv)(nil)
)

// openDriver opens the database at path and starts the writer; the poller
// starts when the front calls Listen.
func openDriver(ctx context.Context, path string, opts ...Option) (*drv, options, error) {
	if err := validate.Context(ctx); err != nil {
		return nil, options{}, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, o, fmt.Errorf("%w: %w", eventstore.ErrInvalidInput, err)
		}
	}
	d := &drv{
		opts:       o,
		path:       path,
		memory:     path == "" || path == ":memory:",
		queue:      make(chan *request, o.maxGroup),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		stmts:      make(map[string]*sql.Stmt),
	}
	if err := d.open(ctx); err != nil {
		_ = d.closeDBs() // the open error is the one to report
		return nil, o, err
	}
	go d.writeLoop()
	return d, o, nil
}

func (d *drv) open(ctx context.Context) error {
	busy := d.opts.busyTimeout.Milliseconds()
	var base string
	var writerPragmas, readerPragmas string
	if d.memory {
		// The memdb VFS gives one in-memory database per name, shared by
		// every connection of the process that opens that name, with real
		// locking between them (unlike shared-cache mode, whose table locks
		// fail with SQLITE_LOCKED instead of waiting). A random name makes
		// each Open a new database. It lives while a connection is open;
		// the writer holds one for the Store's lifetime.
		base = "file:/esv2-" + randomName() + "?vfs=memdb"
	} else {
		switch {
		case strings.HasPrefix(d.path, "file:") && strings.Contains(d.path, "?"):
			base = d.path // a URI with its own parameters (mode, vfs ...)
		case strings.HasPrefix(d.path, "file:"):
			base = d.path + "?"
		default:
			base = "file:" + escapePath(d.path) + "?"
		}
		writerPragmas = fmt.Sprintf("&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=journal_size_limit(%d)", walSizeLimit)
	}
	// The writer's *sql.Tx (writeTx) takes the write lock at BEGIN, as its
	// own BEGIN IMMEDIATE does: a deferred transaction that read first
	// could not wait for the lock, and would fail with SQLITE_BUSY when
	// another process had written since its read.
	writerPragmas += "&_txlock=immediate"
	// Deleted rows are overwritten with zeros in their pages (issue 12:
	// erasure must reach the file, not only the index). Only the writer
	// deletes; appends rarely free space, so it costs them little.
	writerPragmas += "&_pragma=secure_delete(1)"

	common := fmt.Sprintf("&_pragma=busy_timeout(%d)&_pragma=foreign_keys(0)", busy)
	readerPragmas = "&_pragma=query_only(1)"

	var err error
	d.writeDB, err = openPool(base+common+writerPragmas, 1)
	if err != nil {
		return translateError(err, nil)
	}
	d.wconn, err = d.writeDB.Conn(ctx)
	if err != nil {
		return openError(d.path, err)
	}
	if err := d.migrate(ctx); err != nil {
		return err
	}
	if err := d.w.prepare(ctx, d.wconn); err != nil {
		return openError(d.path, err)
	}
	if !d.memory {
		if d.w.walPath, err = walPath(ctx, d.wconn); err != nil {
			return openError(d.path, err)
		}
		d.w.busyTimeout = busy
	}

	if d.memory {
		d.memMu = new(sync.RWMutex)
	}
	d.readDB, err = openPool(base+common+readerPragmas, d.opts.readers)
	if err != nil {
		return translateError(err, nil)
	}
	if err := d.readDB.PingContext(ctx); err != nil {
		return openError(d.path, err)
	}

	if !d.memory {
		d.pollDB, err = openPool(base+common+readerPragmas, 1)
		if err != nil {
			return translateError(err, nil)
		}
		if d.poller, err = newPoller(ctx, d.pollDB); err != nil {
			return openError(d.path, err)
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

func (d *drv) displayPath() string {
	if d.memory {
		return ":memory:"
	}
	return d.path
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

// Close stops the writer and the poller and closes the database; the front
// calls it after it has ended the watches. Appends still queued get
// [eventstore.ErrClosed]; an append the writer has already taken gets its
// result. Calls that were past the front's closed check when Close began
// get ErrClosed too: they find the queue closing, the flag set, or the
// statement cache and pools gone.
//
// The front calls it once; a second call (which would close d.closing
// again) returns the first's result instead, as a defence.
func (d *drv) Close() error {
	d.closeOnce.Do(func() {
		d.listenMu.Lock()
		d.closed.Store(true)
		pollerDone := d.pollerDone
		d.listenMu.Unlock()
		close(d.closing)
		<-d.writerDone
		if pollerDone != nil {
			<-pollerDone
		}
		d.closeErr = d.closeDBs()
	})
	return d.closeErr
}

func (d *drv) closeDBs() error {
	var errs []error
	d.stmtMu.Lock()
	for _, st := range d.stmts {
		errs = append(errs, st.Close())
	}
	d.stmts = nil
	d.stmtMu.Unlock()
	d.w.close()
	if d.poller != nil {
		errs = append(errs, d.poller.close())
	}
	if d.pollDB != nil {
		errs = append(errs, d.pollDB.Close())
	}
	if d.readDB != nil {
		errs = append(errs, d.readDB.Close())
	}
	if d.wconn != nil {
		errs = append(errs, d.wconn.Close())
	}
	if d.writeDB != nil {
		errs = append(errs, d.writeDB.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return translateError(err, nil)
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
