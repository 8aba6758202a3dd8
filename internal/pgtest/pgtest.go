// Package pgtest gives tests a PostgreSQL database to work in: the DSN from
// ESV2_POSTGRES_DSN (or a skip saying how to set it) and fresh schemas that
// are dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that names the test database.
const EnvDSN = "ESV2_POSTGRES_DSN"

// DSN returns the test database's DSN, or skips the test with a message
// saying how to enable PostgreSQL tests when EnvDSN is unset.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skip("PostgreSQL tests are off: set " + EnvDSN + ", e.g. " + EnvDSN + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	return dsn
}

// FreshSchema returns a new schema name made of prefix and random hex, and
// drops that schema (with everything in it) when the test ends. Call it
// before opening stores on the schema, so that their cleanups (Close) run
// first. It skips the test like DSN.
func FreshSchema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := DSN(t)
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
		defer func() {
			if err := conn.Close(ctx); err != nil {
				t.Errorf("drop schema %s: close: %v", name, err)
			}
		}()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}
