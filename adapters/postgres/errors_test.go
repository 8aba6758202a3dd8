package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/adaptertest"
)

func TestTranslateError(t *testing.T) {
	c := errCtx{op: "append", stream: "s", expected: eventstore.Exact(3)}
	dupID := &pgconn.PgError{Code: "23505", ConstraintName: constraintEventID, Detail: "Key (event_id)=(e-1) already exists."}
	dupVersion := &pgconn.PgError{Code: "23505", ConstraintName: constraintStreamVersion}
	serial := &pgconn.PgError{Code: "40001"}
	deadlock := &pgconn.PgError{Code: "40P01"}
	other := &pgconn.PgError{Code: "22001"}
	tests := []struct {
		name      string
		err       error
		is        error // errors.Is target
		check     func(error) string
		retryable bool
	}{
		{name: "event ID taken", err: fmt.Errorf("wrapped: %w", dupID), is: eventstore.ErrIdempotency, retryable: true, check: func(err error) string {
			var ie *eventstore.IdempotencyError
			if !errors.As(err, &ie) || ie.EventID != "e-1" || ie.StreamID != "s" {
				return fmt.Sprintf("%#v, want IdempotencyError{EventID: e-1, StreamID: s}", err)
			}
			return ""
		}},
		{name: "stream version taken", err: dupVersion, is: eventstore.ErrConcurrency, retryable: true, check: func(err error) string {
			var ce *eventstore.ConflictError
			if !errors.As(err, &ce) || ce.StreamID != "s" || ce.Expected != eventstore.Exact(3) {
				return fmt.Sprintf("%#v, want ConflictError{StreamID: s, Expected: 3}", err)
			}
			return ""
		}},
		{name: "serialization failure", err: serial, is: eventstore.ErrConcurrency, retryable: true},
		{name: "deadlock", err: deadlock, is: eventstore.ErrConcurrency, retryable: true},
		{name: "no rows", err: pgx.ErrNoRows, is: eventstore.ErrNotFound},
		{name: "closed pool", err: puddle.ErrClosedPool, is: eventstore.ErrClosed},
		{name: "canceled", err: fmt.Errorf("query: %w", context.Canceled), is: context.Canceled},
		{name: "deadline", err: context.DeadlineExceeded, is: context.DeadlineExceeded},
		{name: "other database error", err: other, is: other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := translateError(tc.err, c)
			if !errors.Is(got, tc.is) {
				t.Errorf("translateError(%v) = %v, want errors.Is %v", tc.err, got, tc.is)
			}
			var pgErr *pgconn.PgError
			if tc.is != other && errors.As(got, &pgErr) { //nolint:errorlint // other is this table's marker for "passed through" (identity), not an error check
				t.Errorf("translateError(%v) = %v still exposes the driver error", tc.err, got)
			}
			if tc.check != nil {
				if msg := tc.check(got); msg != "" {
					t.Error(msg)
				}
			}
			if r := retryable(tc.err); r != tc.retryable {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, r, tc.retryable)
			}
		})
	}
}

// TestTranslateErrorShared: nil, the store's own errors and context
// errors come through translateError as every driver's translation lets
// them, and none of them is retried.
func TestTranslateErrorShared(t *testing.T) {
	c := errCtx{op: "append", stream: "s", expected: eventstore.Exact(3)}
	adaptertest.CheckTranslation(t, func(err error) error { return translateError(err, c) })
	for _, err := range adaptertest.StoreErrors() {
		if retryable(err) {
			t.Errorf("retryable(%v) = true, want false", err)
		}
	}
}

// TestTranslateErrorAny: an append expecting Any never gets a
// ConflictError, whatever the database said; an event ID taken is still
// an IdempotencyError.
func TestTranslateErrorAny(t *testing.T) {
	c := errCtx{op: "append", stream: "s", expected: eventstore.Any}
	for _, pgErr := range []*pgconn.PgError{
		{Code: "23505", ConstraintName: constraintStreamVersion},
		{Code: "23505", ConstraintName: "events_pkey"},
		{Code: "40001"},
		{Code: "40P01"},
	} {
		got := translateError(pgErr, c)
		if errors.Is(got, eventstore.ErrConcurrency) {
			t.Errorf("translateError(%v) for Any = %v, a conflict", pgErr, got)
		}
		if !errors.Is(got, pgErr) {
			t.Errorf("translateError(%v) for Any = %v, want the database error wrapped", pgErr, got)
		}
	}
	dupID := &pgconn.PgError{Code: "23505", ConstraintName: constraintEventID, Detail: "Key (event_id)=(e-1) already exists."}
	if got := translateError(dupID, c); !errors.Is(got, eventstore.ErrIdempotency) {
		t.Errorf("translateError(event ID taken) for Any = %v, want ErrIdempotency", got)
	}
}
