package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/esv2/esv2/eventstore"
)

// The commands of the stream lifecycle (issue 12): an operator answering
// an erasure request deletes a stream, then runs purge.

func (a *app) deleteCommand() *cobra.Command {
	var expected string
	cmd := &cobra.Command{
		Use:   "delete STREAM --expected VERSION|any",
		Short: "Delete a stream: its events and snapshots; a tombstone keeps its version",
		Long: `Delete stream STREAM if its version is VERSION (or whatever it is, with
--expected any): its events and snapshots are removed in one transaction, and
a tombstone keeps its last version. Appends to a deleted stream are refused
for good. Run purge afterwards so that the removed bytes leave the database
files (see concepts.md, "Deletion, truncation and erasure").`,
		Example: `  esv2 --db app.db delete customer-42 --expected 7
  esv2 --db app.db purge`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			exp, err := parseExpected(expected)
			if err != nil {
				return err
			}
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				l, err := lifecycleOf(c)
				if err != nil {
					return err
				}
				if err := l.DeleteStream(cmd.Context(), argv[0], exp); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "stream %q deleted\n", argv[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&expected, "expected", "", "the stream's `VERSION`, or any")
	return cmd
}

func (a *app) truncateCommand() *cobra.Command {
	var before uint64
	cmd := &cobra.Command{
		Use:   "truncate STREAM --before VERSION",
		Short: "Remove a stream's events below a version, keeping the rest",
		Long: `Remove the events of STREAM whose versions are below VERSION; the others
stay, and versions go on. VERSION may be at most the stream's version (the
last event is always kept; delete removes them all).
Run purge afterwards so that the removed bytes leave the database files.`,
		Example: `  esv2 --db app.db truncate sensor-1 --before 1000`,
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if before == 0 {
				return usageErr("give --before VERSION (1 or more)")
			}
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				l, err := lifecycleOf(c)
				if err != nil {
					return err
				}
				if err := l.TruncateStream(cmd.Context(), argv[0], before); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "stream %q truncated before version %d\n", argv[0], before)
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&before, "before", 0, "the first `VERSION` kept")
	return cmd
}

func (a *app) purgeCommand() *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "purge [--full]",
		Short: "Make deleted events leave the database files",
		Long: `The housekeeping after delete and truncate. SQLite: checkpoint and empty
the write-ahead log (deleted rows are already zeroed in the database file);
it fails while another process still reads an older snapshot: try again.
PostgreSQL: VACUUM the store's tables (online; the space is freed, and
overwritten only when reused), or with --full VACUUM FULL (new files
without the removed rows; locks each table while it is rewritten).`,
		Example: `  esv2 --db app.db purge
  esv2 --dsn postgres://localhost/app purge --full`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				var err error
				switch {
				case c.sq != nil:
					err = c.sq.Purge(cmd.Context())
				case full:
					err = c.pg.PurgeFull(cmd.Context())
				default:
					err = c.pg.Purge(cmd.Context())
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, "purged")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "PostgreSQL: VACUUM FULL instead of VACUUM")
	return cmd
}

// parseExpected reads --expected: a version, or any.
func parseExpected(s string) (eventstore.ExpectedVersion, error) {
	switch s {
	case "":
		return 0, usageErr("give --expected VERSION (the stream's version), or --expected any")
	case "any":
		return eventstore.Any, nil
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil || v == 0 {
		return 0, usageErr("--expected wants a version (1 or more) or any, got %q", s)
	}
	return eventstore.Exact(v), nil
}

// lifecycleOf returns the store's deletion ability.
func lifecycleOf(c *conn) (eventstore.Lifecycle, error) {
	l, ok := c.store.(eventstore.Lifecycle)
	if !ok {
		return nil, fmt.Errorf("%T cannot delete", c.store)
	}
	return l, nil
}
