package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDSN returns the DSN of the test database, or skips the test.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ESV2_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PostgreSQL tests are off: set ESV2_POSTGRES_DSN, e.g. ESV2_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// freshSchema returns a new random schema name, dropped (with everything
// in it) when the test ends. Register it before opening stores on it, so
// that the stores close first (cleanups run last-in first-out).
func freshSchema(t testing.TB) string {
	t.Helper()
	return freshSchemaNamed(t, "esv2_test_")
}

// freshSchemaNamed is freshSchema with the name's prefix given.
func freshSchemaNamed(t testing.TB, prefix string) string {
	t.Helper()
	dsn := testDSN(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := prefix + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openStore opens a store on schema (migrating it) and closes it when the
// test ends.
func openStore(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), testDSN(t), append([]Option{WithSchema(schema), WithMigrate()}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestStore opens a store on a fresh schema.
func newTestStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openStore(t, freshSchema(t), opts...)
}
