package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/adaptertest"
)

// driverErrors provokes real errors from the driver, so that
// translateError is tested against what SQLite actually returns.
func driverErrors(t *testing.T) map[string]error {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "e.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(2)
	out := map[string]error{}
	ins := "INSERT INTO events (stream_id, version, event_id, type, time) VALUES (?, ?, ?, 't', 0)"
	if _, err := db.ExecContext(ctx, ins, "s", 1, "id-1"); err != nil {
		t.Fatal(err)
	}
	_, out["event_id"] = db.ExecContext(ctx, ins, "other", 1, "id-1")
	_, out["version"] = db.ExecContext(ctx, ins, "s", 1, "id-2")
	_, out["syntax"] = db.ExecContext(ctx, "SELEKT 1")
	rodb, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer rodb.Close()
	_, out["readonly"] = rodb.ExecContext(ctx, ins, "s", 9, nil)

	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c1.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, out["busy"] = c2.ExecContext(ctx, "BEGIN IMMEDIATE")
	if _, err := c1.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 600)), 0o600); err != nil {
		t.Fatal(err)
	}
	jdb, err := sql.Open("sqlite", junk)
	if err != nil {
		t.Fatal(err)
	}
	defer jdb.Close()
	_, out["notadb"] = jdb.ExecContext(ctx, "SELECT * FROM sqlite_master")
	for k, err := range out {
		if err == nil {
			t.Fatalf("provoking %s: no error", k)
		}
	}
	return out
}

func TestTranslateError(t *testing.T) {
	drv := driverErrors(t)
	op := &appendOp{streamID: "s", expected: eventstore.Exact(0)}
	for _, tc := range []struct {
		name   string
		err    error
		op     *appendOp
		is     error // errors.Is target
		check  func(t *testing.T, got error)
		nowrap bool // the input itself is returned
	}{
		{name: "EventIDUnique", err: drv["event_id"], op: op, is: eventstore.ErrIdempotency, check: func(t *testing.T, got error) {
			var e *eventstore.IdempotencyError
			if !errors.As(got, &e) || e.StreamID != "s" {
				t.Errorf("got %#v, want IdempotencyError for stream s", got)
			}
		}},
		{name: "VersionUnique", err: drv["version"], op: op, is: eventstore.ErrConcurrency, check: func(t *testing.T, got error) {
			var e *eventstore.ConflictError
			if !errors.As(got, &e) || e.StreamID != "s" || e.Expected != 0 {
				t.Errorf("got %#v, want ConflictError on s", got)
			}
		}},
		{name: "UniqueOutsideAppend", err: drv["version"], is: ErrDatabase},
		{name: "Busy", err: drv["busy"], is: ErrBusy},
		{name: "NotADatabase", err: drv["notadb"], is: ErrNotDatabase},
		{name: "Syntax", err: drv["syntax"], is: ErrDatabase},
		{name: "ReadOnly", err: drv["readonly"], is: ErrDatabase, check: func(t *testing.T, got error) {
			if !strings.Contains(got.Error(), "read-only") {
				t.Errorf("got %q, want it to say the database is read-only", got)
			}
		}},
		{name: "ConnDone", err: sql.ErrConnDone, is: eventstore.ErrClosed},
		{name: "DBClosed", err: errors.New("sql: database is closed"), is: eventstore.ErrClosed},
		{name: "Canceled", err: fmt.Errorf("query: %w", context.Canceled), is: context.Canceled, nowrap: true},
		{name: "Deadline", err: context.DeadlineExceeded, is: context.DeadlineExceeded, nowrap: true},
		{name: "Other", err: errors.New("boom"), is: ErrDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := translateError(tc.err, tc.op)
			if !errors.Is(got, tc.is) {
				t.Errorf("translateError(%v) = %v; want errors.Is %v", tc.err, got, tc.is)
			}
			if tc.nowrap && got != tc.err { //nolint:errorlint // identity: the error must come back as it was, not wrapped
				t.Errorf("translateError(%v) = %v; want it unchanged", tc.err, got)
			}
			if !tc.nowrap && tc.op == nil && !strings.HasPrefix(got.Error(), "sqlite: ") && !strings.HasPrefix(got.Error(), "eventstore: ") {
				t.Errorf("translateError(%v) = %q; want a message naming the package", tc.err, got)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// TestTranslateErrorShared: nil, the store's own errors and context
// errors come through translateError as every driver's translation lets
// them, inside an append and outside one.
func TestTranslateErrorShared(t *testing.T) {
	for _, op := range []*appendOp{nil, {streamID: "s", expected: eventstore.Exact(0)}} {
		adaptertest.CheckTranslation(t, func(err error) error { return translateError(err, op) })
	}
}
