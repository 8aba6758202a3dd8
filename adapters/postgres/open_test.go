package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// TestNewKeepsCallersPool: a store made with New leaves the caller's pool
// open at Close.
func TestNewKeepsCallersPool(t *testing.T) {
	schema := freshSchema(t)
	pool, err := pgxpool.New(t.Context(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := New(t.Context(), pool, WithSchema(schema), WithMigrate())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, evt("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(t.Context()); err != nil {
		t.Errorf("caller's pool after Close: %v", err)
	}
	if _, err := New(t.Context(), nil); !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("New(nil pool) = %v, want ErrInvalidInput", err)
	}
}

// TestOpenErrors: bad connection strings fail Open without leaking.
func TestOpenErrors(t *testing.T) {
	dsn := testDSN(t)
	if _, err := Open(t.Context(), "postgres://%zz"); err == nil {
		t.Error("Open with a malformed DSN succeeded")
	}
	schema := freshSchema(t)
	if _, err := Open(t.Context(), dsn, WithSchema(schema), WithMigrate(), WithListenDSN("postgres://%zz")); err == nil {
		t.Error("Open with a malformed listen DSN succeeded")
	}
}
