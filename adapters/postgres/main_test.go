package postgres

import (
	"testing"

	"github.com/esv2/esv2/internal/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDSN returns the DSN of the test database, or skips the test.
func testDSN(t testing.TB) string { t.Helper(); return pgtest.DSN(t) }

// freshSchema returns a new random schema name, dropped (with everything
// in it) when the test ends. Register it before opening stores on it, so
// that the stores close first (cleanups run last-in first-out).
func freshSchema(t testing.TB) string {
	t.Helper()
	return pgtest.FreshSchema(t, "esv2_test_")
}

// openStore opens a store on schema (migrating it) and closes it when the
// test ends.
func openStore(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), testDSN(t), append([]Option{WithSchema(schema), WithMigrate()}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s
}

// closeOK closes c and fails the test if that fails: Close is part of the
// contract under test, so its error is never dropped. It is safe to call
// from a goroutine other than the test's.
func closeOK(t testing.TB, c interface{ Close() error }) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// newTestStore opens a store on a fresh schema.
func newTestStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openStore(t, freshSchema(t), opts...)
}
