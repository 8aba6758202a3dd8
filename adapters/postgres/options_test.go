package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// TestOptionsRefuseBadValues: every option refuses a value it cannot take,
// and Open, New and Migrate return that refusal as ErrInvalidInput before
// they touch the database (the DSN here points nowhere). Before issue 10
// they clamped such values silently (a negative group limit became 1, an
// append limit over 512 MiB became 512 MiB), unlike SQLite's options.
func TestOptionsRefuseBadValues(t *testing.T) {
	bad := map[string]Option{
		"WithSchema(empty)":           WithSchema(""),
		"WithSchema($)":               WithSchema("a$b"),
		"WithListenDSN(empty)":        WithListenDSN(""),
		"WithListenDSN(malformed)":    WithListenDSN("postgres://%zz"),
		"WithPollInterval(0)":         WithPollInterval(0),
		"WithPollInterval(-1s)":       WithPollInterval(-time.Second),
		"WithMaxEventSize(0)":         WithMaxEventSize(0),
		"WithMaxEventSize(-1)":        WithMaxEventSize(-1),
		"WithMaxAppendSize(0)":        WithMaxAppendSize(0),
		"WithMaxAppendSize(-1)":       WithMaxAppendSize(-1),
		"WithMaxAppendSize(>512MiB)":  WithMaxAppendSize(maxAppendLimit + 1),
		"WithGroupCommitLimit(0)":     WithGroupCommitLimit(0),
		"WithGroupCommitLimit(-5)":    WithGroupCommitLimit(-5),
		"WithCloseTimeout(-1ns)":      WithCloseTimeout(-1),
		"WithCloseTimeout(-1 minute)": WithCloseTimeout(-time.Minute),
		"WithNotifyInterval(-1ns)":    WithNotifyInterval(-1),
	}
	// A pool that is never connected: pgxpool connects lazily.
	pool, err := pgxpool.New(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for name, opt := range bad {
		t.Run(name, func(t *testing.T) {
			calls := map[string]func() error{
				"Open": func() error {
					s, err := Open(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", opt)
					if err == nil {
						closeOK(t, s)
					}
					return err
				},
				"New": func() error {
					s, err := New(t.Context(), pool, opt)
					if err == nil {
						closeOK(t, s)
					}
					return err
				},
				"Migrate": func() error { return Migrate(t.Context(), pool, opt) },
			}
			for call, fn := range calls {
				err := fn()
				if !errors.Is(err, eventstore.ErrInvalidInput) {
					t.Errorf("%s with %s: %v, want ErrInvalidInput", call, name, err)
					continue
				}
				if !strings.Contains(err.Error(), "postgres: With") {
					t.Errorf("%s with %s: %q does not name the option", call, name, err)
				}
			}
		})
	}
}

// TestOptionsAccepted: the values at the edges of what the options take
// are accepted, and WithoutPoll and WithCloseTimeout(0) keep what a
// non-positive interval and timeout meant before options were checked.
func TestOptionsAccepted(t *testing.T) {
	cfg, err := applyOptions([]Option{
		WithSchema("s"), WithPollInterval(time.Nanosecond), WithMaxEventSize(1), WithMaxAppendSize(maxAppendLimit),
		WithGroupCommitLimit(1), WithCloseTimeout(0), WithListenDSN("postgres://u@h/db"), WithNotifyInterval(0), nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.schema != "s" || cfg.pollInterval != time.Nanosecond || cfg.maxEventSize != 1 || cfg.maxAppend != maxAppendLimit ||
		cfg.groupEvents != 1 || cfg.closeTimeout != 0 || cfg.listenCfg == nil || cfg.listenCfg.Host != "h" || cfg.notifyInterval != 0 {
		t.Errorf("config %+v", cfg)
	}
	if cfg, err := applyOptions([]Option{WithoutPoll()}); err != nil || cfg.pollInterval != 0 {
		t.Errorf("WithoutPoll: poll interval %v, %v; want 0 (no poll)", cfg.pollInterval, err)
	}
	if cfg, err := applyOptions(nil); err != nil || cfg != defaultConfig() {
		t.Errorf("no options: %+v, %v; want the defaults", cfg, err)
	}
}

// TestOpenNilContext: Open and New refuse a nil context before anything
// else.
func TestOpenNilContext(t *testing.T) {
	var nilCtx context.Context
	if _, err := Open(nilCtx, "postgres://nobody@127.0.0.1:1/none"); !errors.Is(err, eventstore.ErrInvalidInput) { //nolint:staticcheck // the nil context is what is tested
		t.Errorf("Open(nil ctx): %v, want ErrInvalidInput", err)
	}
	if _, err := New(nilCtx, nil); !errors.Is(err, eventstore.ErrInvalidInput) { //nolint:staticcheck // as above
		t.Errorf("New(nil ctx): %v, want ErrInvalidInput", err)
	}
}
