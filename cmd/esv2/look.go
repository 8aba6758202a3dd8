package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/esv2/esv2/eventstore"
)

// withStore opens the store for one command and closes it after.
func (a *app) withStore(ctx context.Context, mode openMode, fn func(c *conn) error) (err error) {
	c, err := a.open(ctx, mode)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	return fn(c)
}

// streamNotFound is the error for a stream with no events.
func streamNotFound(id string) error {
	return fmt.Errorf("stream %q: %w (it has no events)", id, eventstore.ErrNotFound)
}

func (a *app) streamsCommand() *cobra.Command {
	var prefix, after string
	var limit int
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List streams with their version and last event time",
		Long: `List the store's streams in byte order of their IDs, with their version
(which is also their number of events) and the time of their last event.

The list is paged: --limit streams at a time (0 for all). When more remain,
the table is followed by the flag that shows the next page.`,
		Example: `  esv2 --db app.db streams
  esv2 --db app.db streams --prefix order- --limit 20
  esv2 --db app.db streams --after order-20 --json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErr("--limit must be 0 (all) or more, got %d", limit)
			}
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				n := limit
				if n > 0 {
					n++ // one more tells whether another page follows
				}
				list, err := c.insp.ListStreams(cmd.Context(), prefix, after, n)
				if err != nil {
					return err
				}
				more := limit > 0 && len(list) > limit
				if more {
					list = list[:limit]
				}
				if a.json {
					for _, s := range list {
						if err := printJSON(a.stdout, map[string]any{
							"stream": s.StreamID, "version": s.Version, "events": s.Version, "last_time": formatTime(s.LastTime),
						}); err != nil {
							return err
						}
					}
					return nil
				}
				t := newTable(a.stdout, "STREAM", "VERSION", "EVENTS", "LAST EVENT")
				for _, s := range list {
					t.row(s.StreamID, u(s.Version), u(s.Version), formatTime(s.LastTime))
				}
				if err := t.flush(); err != nil {
					return err
				}
				if more {
					fmt.Fprintf(a.stdout, "(more: --after %s)\n", shellQuote(list[len(list)-1].StreamID))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "only streams whose IDs start with `PREFIX` (a category such as order-)")
	f.StringVar(&after, "after", "", "only streams whose IDs sort after `ID` (the last ID of the previous page)")
	f.IntVar(&limit, "limit", 100, "at most `N` streams (0: all)")
	return cmd
}

func (a *app) infoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "info STREAM|$all",
		Short: "Show a stream's version, event count, last position and time",
		Long: `Show a stream's version, number of events, the position of its last event
and that event's time; or, for $all, the store's last position, number of
events and last time. A stream without events is not found (exit status 3);
a deleted stream shows its last version, no events, and "(deleted)".`,
		Example: `  esv2 --db app.db info order-42
  esv2 --db app.db info '$all' --json`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				info, err := c.store.Info(cmd.Context(), id)
				if err != nil {
					return err
				}
				if id != eventstore.AllStreams && info.Version == 0 {
					return streamNotFound(id)
				}
				if a.json {
					out := map[string]any{
						"stream": id, "version": info.Version, "events": info.Count,
						"position": info.Position, "last_time": formatTime(info.LastTime),
					}
					if info.Deleted {
						out["deleted"] = true
					}
					return printJSON(a.stdout, out)
				}
				last := formatTime(info.LastTime)
				if info.Deleted {
					last = "(deleted)" // a tombstone: the events are gone, the version stays
				}
				t := newTable(a.stdout, "STREAM", "VERSION", "EVENTS", "POSITION", "LAST EVENT")
				t.row(id, u(info.Version), u(info.Count), u(info.Position), last)
				return t.flush()
			})
		},
	}
}

// filterFlags are the read filters of read, tail and export.
type filterFlags struct {
	types      []string
	meta       []string
	metaPrefix []string
	prefix     string
}

func (ff *filterFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&ff.types, "type", nil, "only events of type `TYPE` (repeat for any of several)")
	f.StringArrayVar(&ff.meta, "meta", nil, "only events whose metadata has `KEY=VALUE` (repeat: all must hold; KEY=V1|V2 for any of several values)")
	f.StringArrayVar(&ff.metaPrefix, "meta-prefix", nil, "only events whose metadata value of KEY starts with PREFIX (`KEY=PREFIX`)")
	f.StringVar(&ff.prefix, "prefix", "", "only streams whose IDs start with `PREFIX` (with $all)")
}

func (ff *filterFlags) filter() (eventstore.Filter, error) {
	f := eventstore.Filter{Types: ff.types, StreamPrefix: ff.prefix}
	for _, m := range ff.meta {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return f, usageErr("--meta wants KEY=VALUE, got %q", m)
		}
		if strings.Contains(v, "|") {
			f.Metadata = append(f.Metadata, eventstore.MetadataOneOf(k, strings.Split(v, "|")...))
		} else {
			f.Metadata = append(f.Metadata, eventstore.MetadataEquals(k, v))
		}
	}
	for _, m := range ff.metaPrefix {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return f, usageErr("--meta-prefix wants KEY=PREFIX, got %q", m)
		}
		f.Metadata = append(f.Metadata, eventstore.MetadataHasPrefix(k, v))
	}
	return f, nil
}

func (a *app) readCommand() *cobra.Command {
	var ff filterFlags
	var after uint64
	var limit int
	var backwards, raw bool
	cmd := &cobra.Command{
		Use:   "read STREAM|$all",
		Short: "Print a stream's events, or the whole log's ($all)",
		Long: `Print the events of a stream in version order, or of the whole store ($all)
in position order, with filters on type, metadata and (for $all) stream ID
prefix.

Data is shown as JSON whether it was stored as JSON or msgpack; other bytes
as base64. --raw writes the data bytes themselves, one event after the
other with nothing between them (use it with --limit 1).

--after N begins past version N (a stream) or position N ($all): pass the
last key you saw to go on from there. With --backwards it begins below N.`,
		Example: `  esv2 --db app.db read order-42
  esv2 --db app.db read order-42 --backwards --limit 1 --raw > last.bin
  esv2 --db app.db read '$all' --prefix order- --type OrderPlaced --after 1000
  esv2 --db app.db read '$all' --meta tenant=acme --json | jq .data`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			f, err := ff.filter()
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageErr("--limit must be 0 (all) or more, got %d", limit)
			}
			ctx := cmd.Context()
			return a.withStore(ctx, readOnly, func(c *conn) error {
				if id != eventstore.AllStreams {
					info, err := c.store.Info(ctx, id)
					if err != nil {
						return err
					}
					if info.Version == 0 {
						return streamNotFound(id)
					}
				}
				opts := eventstore.ReadOptions{Backwards: backwards, Limit: limit, Filter: f}
				if after > 0 {
					opts.From = eventstore.After(after)
				}
				var t *table
				if !a.json && !raw {
					t = newTable(a.stdout, "POSITION", "STREAM", "VERSION", "TYPE", "TIME", "DATA")
				}
				for r, err := range c.store.Read(ctx, id, opts) {
					if err != nil {
						if t != nil {
							_ = t.flush() // what was read before the error
						}
						return err
					}
					switch {
					case raw:
						if _, err := a.stdout.Write(r.Data); err != nil {
							return err
						}
					case a.json:
						if err := printJSON(a.stdout, newEventJSON(r)); err != nil {
							return err
						}
					default:
						data, _ := renderData(r.Data)
						t.row(u(r.Position), r.StreamID, u(r.Version), r.Type, formatTime(r.Time), string(data))
					}
				}
				if t != nil {
					return t.flush()
				}
				return nil
			})
		},
	}
	ff.add(cmd)
	f := cmd.Flags()
	f.Uint64Var(&after, "after", 0, "begin past version (or $all position) `N`")
	f.IntVar(&limit, "limit", 0, "at most `N` events (0: all)")
	f.BoolVar(&backwards, "backwards", false, "newest first")
	f.BoolVar(&raw, "raw", false, "write the data bytes as stored, nothing else")
	return cmd
}

func (a *app) statsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count events, streams and snapshots; show size on disk and time span",
		Long: `Show the store's number of events, streams and snapshots, its last
position, the times of its oldest and newest events, the space it takes on
disk (SQLite: the database file without its WAL; PostgreSQL: the schema's
tables with their indexes) and its schema version.`,
		Example: `  esv2 --db app.db stats
  esv2 --dsn postgres://localhost/app --schema shop stats --json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				s, err := c.insp.Summary(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					return printJSON(a.stdout, map[string]any{
						"events": s.Events, "streams": s.Streams, "snapshots": s.Snapshots, "position": s.Position,
						"oldest": formatTime(s.Oldest), "newest": formatTime(s.Newest),
						"size_bytes": s.SizeBytes, "schema_version": s.SchemaVersion,
					})
				}
				t := newTable(a.stdout, "EVENTS", "STREAMS", "SNAPSHOTS", "POSITION", "OLDEST", "NEWEST", "SIZE", "SCHEMA")
				t.row(u(s.Events), u(s.Streams), u(s.Snapshots), u(s.Position), formatTime(s.Oldest), formatTime(s.Newest),
					formatBytes(s.SizeBytes), strconv.Itoa(s.SchemaVersion))
				return t.flush()
			})
		},
	}
}

func (a *app) snapshotsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots STREAM",
		Short: "List a stream's snapshots: names, versions, schema tags, sizes",
		Long: `List the snapshots saved for a stream, by name, with the version each
was taken at, its schema tag, the size of its data and when it was saved.
A stream without snapshots is not found (exit status 3).`,
		Example: `  esv2 --db app.db snapshots order-42`,
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := argv[0]
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				list, err := c.insp.ListSnapshots(cmd.Context(), id)
				if err != nil {
					return err
				}
				if len(list) == 0 {
					return fmt.Errorf("stream %q: no snapshots: %w", id, eventstore.ErrNotFound)
				}
				if a.json {
					for _, s := range list {
						if err := printJSON(a.stdout, map[string]any{
							"stream": id, "name": s.Name, "version": s.Version, "schema": s.Schema,
							"size": len(s.Data), "time": formatTime(s.Time),
						}); err != nil {
							return err
						}
					}
					return nil
				}
				t := newTable(a.stdout, "NAME", "VERSION", "SCHEMA", "SIZE", "SAVED")
				for _, s := range list {
					t.row(s.Name, u(s.Version), s.Schema, formatBytes(int64(len(s.Data))), formatTime(s.Time))
				}
				return t.flush()
			})
		},
	}
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// formatBytes prints a size for people: bytes below 10 KiB, else KiB,
// MiB or GiB with one decimal.
func formatBytes(n int64) string {
	const k = 1024
	switch {
	case n < 10*k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
