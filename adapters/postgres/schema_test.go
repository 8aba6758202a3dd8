package postgres

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
)

// TestMigrateConcurrently: several stores migrating one schema at once
// serialise on the advisory lock; the schema ends at SchemaVersion, set
// up once.
func TestMigrateConcurrently(t *testing.T) {
	schema := freshSchema(t)
	var g errgroup.Group
	stores := make([]*Store, 4)
	for i := range stores {
		g.Go(func() error {
			s, err := Open(t.Context(), testDSN(t), WithSchema(schema), WithMigrate(), WithoutListen())
			stores[i] = s
			return err
		})
	}
	err := g.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { closeOK(t, s) })
		}
	}
	if err != nil {
		t.Fatalf("concurrent migrations: %v", err)
	}
	versions := schemaVersions(t, stores[0].d.pool, stores[0].d.cfg.schema)
	var want []int
	for v := 1; v <= SchemaVersion; v++ {
		want = append(want, v)
	}
	if diff := cmp.Diff(want, versions); diff != "" {
		t.Errorf("schema_version rows (-want +got):\n%s", diff)
	}
	if err := stores[1].Migrate(t.Context()); err != nil {
		t.Errorf("Migrate of an up-to-date schema: %v", err)
	}
}

// TestSchemaVersionRefused: a schema not set up, or written by a newer
// version, is refused with a clear error.
func TestSchemaVersionRefused(t *testing.T) {
	schema := freshSchema(t)
	_, err := Open(t.Context(), testDSN(t), WithSchema(schema), WithoutListen())
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || !errors.Is(err, ErrSchemaVersion) || sv.Found != 0 {
		t.Fatalf("Open without migrating a new schema: %v, want a *SchemaVersionError with Found 0", err)
	}

	s := openStore(t, schema, WithoutListen())
	if _, err := s.d.pool.Exec(t.Context(), "INSERT INTO "+s.d.schema+".schema_version (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]Option{{}, {WithMigrate()}} {
		_, err := Open(t.Context(), testDSN(t), append(opts, WithSchema(schema), WithoutListen())...)
		if !errors.As(err, &sv) || sv.Found != 99 || sv.Supported != SchemaVersion {
			t.Errorf("Open(%d options) of a version-99 schema: %v, want a *SchemaVersionError{Found: 99}", len(opts), err)
		}
	}
	if err := s.Migrate(t.Context()); !errors.Is(err, ErrSchemaVersion) {
		t.Errorf("Migrate of a version-99 schema: %v, want ErrSchemaVersion", err)
	}
}

// TestMigrateFunction: the package-level Migrate sets a schema up for
// stores opened without WithMigrate.
func TestMigrateFunction(t *testing.T) {
	schema := freshSchema(t)
	s := newTestStore(t, WithoutListen()) // any store, for its pool
	if err := Migrate(t.Context(), s.d.pool, WithSchema(schema)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	other, err := Open(t.Context(), testDSN(t), WithSchema(schema), WithoutListen())
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	defer other.Close()
	if err := Migrate(t.Context(), s.d.pool, WithSchema(schema)); err != nil {
		t.Errorf("second Migrate: %v", err)
	}
}

// TestSchemaNameRefused: WithSchema refuses names PostgreSQL would not
// keep as given, or that could end the migrations' function bodies.
func TestSchemaNameRefused(t *testing.T) {
	for _, name := range []string{"", "a\x00b", string(make([]byte, 64)), "x$fn$y", "$", "\xff"} {
		if _, err := applyOptions([]Option{WithSchema(name)}); !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("WithSchema(%q): %v, want ErrInvalidInput", name, err)
		}
	}
	for _, name := range []string{"esv2", "My Schema", "x\"y", "ü63"} {
		if _, err := applyOptions([]Option{WithSchema(name)}); err != nil {
			t.Errorf("WithSchema(%q): %v, want nil", name, err)
		}
	}
}

// TestSchemaNameDollarRefused: a schema name holding the migrations'
// dollar tag is refused before anything is sent (it used to end the
// function body early and make the migration fail, or run what follows).
func TestSchemaNameDollarRefused(t *testing.T) {
	dsn := testDSN(t)
	for _, name := range []string{"esv2_test_$fn$x", "esv2_test_$fn$x\"; SELECT 1; --"} {
		s, err := Open(t.Context(), dsn, WithSchema(name), WithMigrate())
		if err == nil {
			closeOK(t, s)
		}
		if !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("Open with schema %q: %v, want ErrInvalidInput", name, err)
		}
	}
}

// TestSchemaNameQuoted: a schema name that needs quoting works.
func TestSchemaNameQuoted(t *testing.T) {
	s := openStore(t, pgtest.FreshSchema(t, `Esv2 "Test" `))
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, evt("x")); err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.Collect(s.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil || len(got) != 1 {
		t.Fatalf("read back %d events, %v; want 1", len(got), err)
	}
}

// schemaVersions returns the versions recorded in schema's schema_version
// table, in order: one row per migration that ran.
func schemaVersions(t *testing.T, pool *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version FROM "+pgx.Identifier{schema}.Sanitize()+".schema_version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return versions
}
