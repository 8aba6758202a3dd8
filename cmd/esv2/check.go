package main

import (
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
)

func (a *app) verifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check every invariant of the store; exit status 4 if any is broken",
		Long: `Walk the whole store and report every broken invariant:

  schema       the schema is at the version this esv2 writes
  versions     each stream's versions are 1, 2, 3 ... without gaps or repeats
  positions    within a stream, positions increase with versions; no position
               is past the high-water mark (SQLite), so none can be reused
  streams      the streams table agrees with the events (a row per stream
               with events; SQLite: its version and last time), no row without
  head         the store's head row agrees with the events (SQLite)
  event-ids    the unique index on event IDs exists and no ID is stored twice
  stream-hash  each event's stored stream hash, which consumer groups
               partition by, is its stream's (PostgreSQL)
  integrity    the database's own check of its file and indexes (SQLite)

It prints one line per problem (at most 1000 per check) and exits with
status 4 when it found any, 0 when the store is sound. It only reads.`,
		Example: `  esv2 --db app.db verify
  esv2 --dsn postgres://localhost/app verify --json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				var problems []eventstore.Problem
				err := a.spin("verify", func() (err error) {
					problems, err = c.insp.Verify(cmd.Context())
					return err
				})
				if err != nil {
					return err
				}
				if a.json {
					for _, p := range problems {
						if err := printJSON(a.stdout, map[string]any{
							"check": p.Check, "stream": p.StreamID, "position": p.Position, "detail": p.Detail,
						}); err != nil {
							return err
						}
					}
				} else if len(problems) > 0 {
					t := newTable(a.stdout, "CHECK", "STREAM", "POSITION", "PROBLEM")
					for _, p := range problems {
						pos := ""
						if p.Position > 0 {
							pos = u(p.Position)
						}
						t.row(p.Check, p.StreamID, pos, p.Detail)
					}
					if err := t.flush(); err != nil {
						return err
					}
				}
				if len(problems) > 0 {
					fmt.Fprintf(a.stderr, "esv2: verify: %d broken invariants\n", len(problems))
					return errProblems
				}
				if !a.json {
					s, err := c.insp.Summary(cmd.Context())
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "ok: %d events in %d streams, every invariant holds\n", s.Events, s.Streams)
				}
				return nil
			})
		},
	}
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade a PostgreSQL store's schema and print its version",
		Long: `Create the PostgreSQL schema named by --schema (default "esv2"), or bring
it to the version this esv2 writes, and print that version. Stores refuse
to open on an older schema, so run it when deploying a new esv2, with a
role allowed to create tables. It is safe to run from several processes at
once, and does nothing on an up-to-date schema.

SQLite stores migrate themselves when an application opens them.`,
		Example: `  esv2 --dsn postgres://admin@localhost/app --schema shop migrate`,
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if a.db != "" {
				return usageErr("migrate is for PostgreSQL (--dsn): SQLite stores migrate themselves when opened")
			}
			dsn := a.dsnOrEnv()
			if dsn == "" {
				return usageErr("no store: give --dsn URL (or set %s)", envDSN)
			}
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				return openErr(fmt.Errorf("--dsn: %w", err))
			}
			defer pool.Close()
			var opts []postgres.Option
			if a.schema != "" {
				opts = append(opts, postgres.WithSchema(a.schema))
			}
			if err := postgres.Migrate(ctx, pool, opts...); err != nil {
				return openErr(err)
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"schema": a.schemaName(), "version": postgres.SchemaVersion})
			}
			fmt.Fprintln(a.stdout, "schema "+strconv.Quote(a.schemaName())+" is at version "+strconv.Itoa(postgres.SchemaVersion))
			return nil
		},
	}
}

func (a *app) schemaName() string {
	if a.schema == "" {
		return postgres.DefaultSchema
	}
	return a.schema
}
