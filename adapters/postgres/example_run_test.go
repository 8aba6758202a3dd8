package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestExample runs Example and ExampleNew (which have no Output comment
// because they need a database) so that they keep working, then drops
// their schema.
func TestExample(t *testing.T) {
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PostgreSQL tests are off: set ESV2_POSTGRES_DSN, e.g. ESV2_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS esv2_example CASCADE"); err != nil {
			t.Error(err)
		}
	})
	Example()
	ExampleNew()
}
