package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors specific to the SQLite adapter. Test for them with errors.Is.
var (
	// ErrBusy reports that the database stayed locked by another
	// connection or process for longer than the busy timeout
	// ([WithBusyTimeout]).
	ErrBusy = errors.New("sqlite: database is busy")
	// ErrNotDatabase reports that the file given to Open is not an SQLite
	// database.
	ErrNotDatabase = errors.New("sqlite: file is not an SQLite database")
	// ErrSchemaVersion reports that the database was created by a newer
	// version of esv2 (its schema version is higher than this package
	// knows), so it is refused rather than misread.
	ErrSchemaVersion = errors.New("sqlite: unsupported schema version")
	// ErrDatabase wraps every other error reported by SQLite.
	ErrDatabase = errors.New("sqlite: database error")
)

// appendOp says which append an error belongs to, so that a constraint
// violation can be reported as the eventstore error it stands for.
type appendOp struct {
	streamID string
	expected eventstore.ExpectedVersion
}

// translateError is the one place where driver errors become the errors
// callers see: eventstore sentinels and types, context errors, or one of
// this package's sentinels wrapping the driver's message. op is nil outside
// appends.
func translateError(err error, op *appendOp) error {
	if err == nil {
		return nil
	}
	switch {
	case driver.Translated(err),
		errors.Is(err, ErrBusy), errors.Is(err, ErrNotDatabase),
		errors.Is(err, ErrSchemaVersion), errors.Is(err, ErrDatabase):
		return err
	case errors.Is(err, sql.ErrConnDone), err.Error() == "sql: database is closed":
		return fmt.Errorf("%w (%w)", eventstore.ErrClosed, err)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	code := se.Code()
	switch code & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: locked by another connection or process beyond the busy timeout: %w", ErrBusy, err)
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrNotDatabase, err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w: the database is read-only (mode=ro, permissions or a read-only medium): %w", ErrDatabase, err)
	case sqlite3.SQLITE_CONSTRAINT:
		if op != nil && (code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			msg := se.Error()
			switch {
			case strings.Contains(msg, "events.event_id"):
				// Only a writer racing outside this package's write lock
				// can get here: appends check IDs before inserting.
				return &eventstore.IdempotencyError{StreamID: op.streamID}
			case strings.Contains(msg, "events.stream_id"):
				return &eventstore.ConflictError{StreamID: op.streamID, Expected: op.expected}
			}
		}
	case sqlite3.SQLITE_INTERRUPT:
		return fmt.Errorf("%w: statement interrupted: %w", ErrDatabase, err)
	}
	return fmt.Errorf("%w: %w", ErrDatabase, err)
}
