package postgres

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

// TestMigrateConcurrentlyOnePool migrates a new schema from several
// goroutines sharing one pool, at the default isolation and at repeatable
// read. Before the migration lock was taken outside the transaction, 3 of 4
// callers failed: the waiting transactions kept the catalog state from
// before the wait and re-ran CREATE SCHEMA (duplicate key on
// pg_namespace), and at repeatable read also CREATE TABLE ("already
// exists"); the failure was even reported as a ConflictError.
func TestMigrateConcurrentlyOnePool(t *testing.T) {
	for _, c := range []struct{ name, params string }{
		{"ReadCommitted", ""},
		{"RepeatableRead", "&options=" + strings.ReplaceAll(url.QueryEscape(`-c default_transaction_isolation=repeatable\ read`), "+", "%20")},
	} {
		t.Run(c.name, func(t *testing.T) {
			for round := range 3 {
				schema := freshSchema(t)
				s, _ := faultStore(t, c.params) // a pool on its own schema; we migrate another one through it
				g, ctx := errgroup.WithContext(t.Context())
				for range 4 {
					g.Go(func() error { return Migrate(ctx, s.Pool(), WithSchema(schema)) })
				}
				if err := g.Wait(); err != nil {
					t.Fatalf("round %d: concurrent Migrate: %v", round, err)
				}
				versions := schemaVersions(t, s.Pool(), schema)
				var iso string
				if err := s.Pool().QueryRow(t.Context(), "SHOW transaction_isolation").Scan(&iso); err != nil {
					t.Fatal(err)
				}
				if want := map[string]string{"ReadCommitted": "read committed", "RepeatableRead": "repeatable read"}[c.name]; iso != want {
					t.Fatalf("sessions run at %q, want %q (the test would prove nothing)", iso, want)
				}
				if len(versions) != SchemaVersion {
					t.Fatalf("round %d: schema_version rows %v, want one per version up to %d (each migration once)", round, versions, SchemaVersion)
				}
			}
		})
	}
}
