package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// errCtx says what a failed call was doing, for translateError.
type errCtx struct {
	op       string
	stream   string                     // stream appended to, if any
	expected eventstore.ExpectedVersion // its expectation
}

// PostgreSQL error codes the store gives a meaning to.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// Constraint names of the schema (see migrations).
const (
	constraintEventID       = "events_event_id_key"
	constraintStreamVersion = "events_stream_version_key"
)

var eventIDDetail = regexp.MustCompile(`^Key \(event_id\)=\((.*)\) already exists\.$`)

// translateError is the one place where driver errors become esv2 errors,
// so that callers never see a raw driver error for a condition the
// eventstore contract names:
//
//   - a unique violation on the event-ID index → *eventstore.IdempotencyError
//     (a racing writer stored the ID; which stream is not known);
//   - any other unique violation (stream version, position, stream row),
//     a serialization failure or a deadlock → *eventstore.ConflictError
//     (its Actual is not known here and is 0), except for an append
//     expecting eventstore.Any, which cannot conflict: that one gets a
//     wrapped database error;
//   - pgx.ErrNoRows → eventstore.ErrNotFound;
//   - a closed pool → eventstore.ErrClosed;
//   - anything else (context errors included, still matched by errors.Is)
//     is wrapped with the operation's name.
//
// The writer retries conflicts from racing writers before it gets here
// (see retryable), so in practice ConflictErrors carry the real version.
func translateError(err error, c errCtx) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("postgres: %s: %w", c.op, err)
	}
	if driver.Translated(err) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", c.op, eventstore.ErrNotFound)
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return fmt.Errorf("postgres: %s: %w", c.op, eventstore.ErrClosed)
	}
	var pgErr *pgconn.PgError
	// Only an append's constraint errors are about expected versions and
	// event IDs; anywhere else (a migration, a snapshot) they are plain
	// database errors.
	if errors.As(err, &pgErr) && c.op == "append" {
		switch pgErr.Code {
		case codeUniqueViolation, codeSerializationFailure, codeDeadlockDetected:
			if c.expected == eventstore.Any && pgErr.ConstraintName != constraintEventID {
				// An append expecting Any cannot conflict: the database
				// refused it because of a concurrent writer the retries
				// did not get past.
				return fmt.Errorf("postgres: %s: refused because of a concurrent writer, retry: %w", c.op, err)
			}
		}
		switch pgErr.Code {
		case codeUniqueViolation:
			if pgErr.ConstraintName == constraintEventID {
				id := ""
				if m := eventIDDetail.FindStringSubmatch(pgErr.Detail); m != nil {
					id = m[1]
				}
				return &eventstore.IdempotencyError{EventID: id, StreamID: c.stream}
			}
			return &eventstore.ConflictError{StreamID: c.stream, Expected: c.expected}
		case codeSerializationFailure, codeDeadlockDetected:
			return &eventstore.ConflictError{StreamID: c.stream, Expected: c.expected}
		}
	}
	return fmt.Errorf("postgres: %s: %w", c.op, err)
}

// retryable reports whether an append that failed with err should simply
// be run again: the database refused it because of a concurrent writer
// (a group committing side by side, or a serialization failure), and a
// second run will see the real state.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	case codeUniqueViolation:
		// Appends commit side by side (migrations/0011): a group that
		// stores an event ID or a stream version a concurrent group
		// committed first fails on the unique index, having written
		// nothing, and its retry sees that group's events.
		return true
	}
	return false
}

func opErr(op string) errCtx { return errCtx{op: op} }

// connectionLost reports whether err says the connection to the server was
// lost or refused (rather than the statement failing), so that the same
// read on another connection may succeed.
func connectionLost(err error) bool {
	if errors.Is(err, eventstore.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down, crashed, or not accepting connections yet.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &netErr)
}
