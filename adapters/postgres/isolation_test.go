package postgres

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// TestAppendUnderRepeatableRead: with default_transaction_isolation set to
// repeatable read on the sessions (as a database or role setting would),
// appends expecting Any from two stores (one on a pool Open made from a
// DSN with the option, one on a caller's pool given to New) all succeed:
// append_batch runs at READ COMMITTED, so its reads see what committed
// while it waited for the append lock. Before, they failed with false
// ConflictErrors.
func TestAppendUnderRepeatableRead(t *testing.T) {
	schema := freshSchema(t)
	dsn := testDSN(t)
	opt := "options=" + strings.ReplaceAll(url.QueryEscape(`-c default_transaction_isolation=repeatable\ read`), "+", "%20")
	switch {
	case !strings.Contains(dsn, "://"):
		t.Skip("the DSN is not a URL; this test appends options to it")
	case strings.Contains(dsn, "?"):
		dsn += "&" + opt
	default:
		dsn += "?" + opt
	}
	a := openStore(t, schema, WithoutListen(), WithoutPoll())
	closeOK(t, a)
	opened, err := Open(t.Context(), dsn, WithSchema(schema), WithoutListen(), WithoutPoll())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, opened) })
	cfg, err := pgxpool.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	made, err := New(t.Context(), pool, WithSchema(schema), WithoutListen(), WithoutPoll())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, made) })
	stores := []*Store{opened, made}
	for i, s := range stores {
		var iso string
		if err := s.d.pool.QueryRow(t.Context(), "SHOW transaction_isolation").Scan(&iso); err != nil {
			t.Fatal(err)
		}
		if iso != "repeatable read" {
			t.Fatalf("store %d: sessions run at %q, want repeatable read (the test would prove nothing)", i, iso)
		}
	}

	const goroutines, appends = 8, 30
	errs := make(chan error, 2*goroutines*appends)
	var wg sync.WaitGroup
	for si, s := range stores {
		for g := range goroutines {
			wg.Go(func() {
				for i := range appends {
					stream := fmt.Sprintf("s-%d-%d-%d", si, g, i%3)
					if _, err := s.Append(t.Context(), stream, eventstore.Any, evt("x")); err != nil {
						errs <- fmt.Errorf("store %d, goroutine %d, append %d: %w", si, g, i, err)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d appends failed", n, 2*goroutines*appends)
	}
	info, err := made.Info(t.Context(), eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(2 * goroutines * appends); info.Count != want {
		t.Errorf("store holds %d events, want %d", info.Count, want)
	}
}
