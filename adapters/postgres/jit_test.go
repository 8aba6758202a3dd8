package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// withParam returns dsn with the run-time parameter key=value added, in
// either of the forms pgx parses (URL or keyword/value).
func withParam(dsn, key, value string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + key + "=" + value
	}
	return dsn + "?" + key + "=" + value
}

// sessionJIT returns the jit setting of a session of s's pool.
func sessionJIT(t *testing.T, s *Store) string {
	t.Helper()
	var v string
	if err := s.d.pool.QueryRow(t.Context(), "SHOW jit").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The pool Open makes runs its sessions with JIT off, whatever the
// server's default, unless the DSN asks for jit itself: a stream's page
// query was JIT-compiled, page after page, once the stream was long
// enough (see JITOff).
func TestOpenTurnsJITOff(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
	if got := sessionJIT(t, s); got != "off" {
		t.Errorf("SHOW jit on a session of Open's pool = %q, want off", got)
	}
	on, err := Open(t.Context(), withParam(testDSN(t), "jit", "on"), WithSchema(schema), WithoutListen(), WithoutPoll())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, on) })
	if got := sessionJIT(t, on); got != "on" {
		t.Errorf("SHOW jit with jit=on in the DSN = %q, want on (the DSN's choice kept)", got)
	}
}

func TestJITOff(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://u@localhost/db")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams = nil
	JITOff(cfg)
	if got := cfg.ConnConfig.RuntimeParams["jit"]; got != "off" {
		t.Errorf("JITOff on a config without run-time parameters: jit = %q, want off", got)
	}
	cfg, err = pgxpool.ParseConfig("postgres://u@localhost/db?jit=on&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	JITOff(cfg)
	if got := cfg.ConnConfig.RuntimeParams["jit"]; got != "on" {
		t.Errorf("JITOff on a config with jit=on: jit = %q, want on", got)
	}
	if got := cfg.ConnConfig.RuntimeParams["application_name"]; got != "x" {
		t.Errorf("JITOff changed application_name to %q", got)
	}
	JITOff(nil) // no config, nothing to do: must not panic
}
