package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

func TestReadTx(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			s := k.open(t)
			if _, err := s.Append(ctx, "a", eventstore.Any, eventstore.Event{Type: "T"}, eventstore.Event{Type: "T"}); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := s.ReadTx(ctx, func(tx *sql.Tx) error {
				return tx.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n)
			}); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("count %d, want 2", n)
			}
			// Reader connections cannot write.
			err := s.ReadTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM events`)
				return err
			})
			if err == nil {
				t.Fatal("a write through ReadTx succeeded")
			}
			boom := errors.New("boom")
			if err := s.ReadTx(ctx, func(*sql.Tx) error { return boom }); err != boom { //nolint:errorlint // returned as it is
				t.Fatalf("fn's error came back as %v", err)
			}
			if err := s.ReadTx(ctx, nil); !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Fatalf("nil fn: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.ReadTx(ctx, func(*sql.Tx) error { return nil }); !errors.Is(err, eventstore.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		})
	}
}
