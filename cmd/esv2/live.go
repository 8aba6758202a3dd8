package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

func (a *app) tailCommand() *cobra.Command {
	var ff filterFlags
	var after uint64
	var fromStart bool
	var count int
	cmd := &cobra.Command{
		Use:   "tail [STREAM|$all]",
		Short: "Follow new events as they are appended, like tail -f",
		Long: `Print events as they are appended to a stream, or to the whole store ($all,
the default), one line each, until interrupted (Ctrl-C ends it cleanly,
with exit status 0). It sees appends of every process using the store.

By default it begins at the end: only events appended from now on. With
--after N it begins past version N (a stream) or position N ($all), so a
tail that was stopped can resume where it stopped (each line shows the
position); --from-start prints the whole history first.`,
		Example: `  esv2 --db app.db tail
  esv2 --db app.db tail order-42 --from-start
  esv2 --dsn postgres://localhost/app tail '$all' --after 123456 --type OrderPlaced --json`,
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := eventstore.AllStreams
			if len(argv) == 1 {
				id = argv[0]
			}
			f, err := ff.filter()
			if err != nil {
				return err
			}
			if fromStart && after > 0 {
				return usageErr("give --after or --from-start, not both")
			}
			opts := eventstore.WatchOptions{From: eventstore.FromEnd(), Filter: f}
			switch {
			case fromStart:
				opts.From = eventstore.FromStart()
			case after > 0:
				opts.From = eventstore.After(after)
			}
			ctx := cmd.Context()
			return a.withStore(ctx, watching, func(c *conn) error {
				n := 0
				for r, err := range c.store.Watch(ctx, id, opts) {
					if err != nil {
						if ctx.Err() != nil {
							return nil // interrupted: the normal end of a tail
						}
						return err
					}
					if a.json {
						if err := printJSON(a.stdout, newEventJSON(r)); err != nil {
							return err
						}
					} else {
						data, _ := renderData(r.Data)
						fmt.Fprintf(a.stdout, "%d %s %d %s %s %s\n", r.Position, r.StreamID, r.Version, r.Type, formatTime(r.Time), data)
					}
					if n++; count > 0 && n >= count {
						break
					}
				}
				return nil
			})
		},
	}
	ff.add(cmd)
	f := cmd.Flags()
	f.Uint64Var(&after, "after", 0, "begin past version (or $all position) `N`")
	f.BoolVar(&fromStart, "from-start", false, "print the whole history first")
	f.IntVar(&count, "count", 0, "stop after `N` events (0: never)")
	return cmd
}

func (a *app) subscriptionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "subscriptions",
		Aliases: []string{"subs"},
		Short:   "List subscriptions, reset them, list, replay and discard parked events",
		Long: `Operate the durable subscriptions (package subscription) kept in the store's
database: list them with their position and lag, move one to another
position, and list, replay or discard the events one has parked.

Replaying a parked event needs the subscription's handler, which only the
application has: "replay" stores a request, and a running member of the
subscription replays the event at its next lease renewal (within a second
with the default lease); --wait waits for the outcome.`,
	}
	cmd.AddCommand(a.subsListCommand(), a.subsResetCommand(), a.subsParkedCommand(), a.subsReplayCommand(), a.subsDiscardCommand())
	return cmd
}

// subOps runs the subscription package's generic operations on whichever
// store is open.
type subOps struct {
	list    func(ctx context.Context) ([]subscription.Info, error)
	reset   func(ctx context.Context, name string, from eventstore.Start) error
	parked  func(ctx context.Context, name string) ([]subscription.Parked, error)
	discard func(ctx context.Context, name string, position uint64) error
	// replay requests a replay of the parked event at position, or of
	// all of them for position 0.
	replay func(ctx context.Context, name string, position uint64) (int, error)
}

func opsOf(c *conn) subOps {
	if c.sq != nil {
		s := c.sq
		return subOps{
			list:  func(ctx context.Context) ([]subscription.Info, error) { return subscription.List(ctx, s) },
			reset: func(ctx context.Context, n string, f eventstore.Start) error { return subscription.Reset(ctx, s, n, f) },
			parked: func(ctx context.Context, n string) ([]subscription.Parked, error) {
				return subscription.ListParked(ctx, s, n)
			},
			discard: func(ctx context.Context, n string, p uint64) error { return subscription.DiscardParked(ctx, s, n, p) },
			replay: func(ctx context.Context, n string, p uint64) (int, error) {
				if p == 0 {
					return subscription.RequestReplayAll(ctx, s, n)
				}
				return subscription.RequestReplay(ctx, s, n, p)
			},
		}
	}
	s := c.pg
	return subOps{
		list:  func(ctx context.Context) ([]subscription.Info, error) { return subscription.List(ctx, s) },
		reset: func(ctx context.Context, n string, f eventstore.Start) error { return subscription.Reset(ctx, s, n, f) },
		parked: func(ctx context.Context, n string) ([]subscription.Parked, error) {
			return subscription.ListParked(ctx, s, n)
		},
		discard: func(ctx context.Context, n string, p uint64) error { return subscription.DiscardParked(ctx, s, n, p) },
		replay: func(ctx context.Context, n string, p uint64) (int, error) {
			if p == 0 {
				return subscription.RequestReplayAll(ctx, s, n)
			}
			return subscription.RequestReplay(ctx, s, n, p)
		},
	}
}

func (a *app) subsListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List subscriptions with their position, lag and parked events",
		Long: `List the subscriptions stored in the store's database, by name: their
number of partitions, position (the lowest of their partitions'), the
store's head, the lag between the two (in positions) and the number of
events they parked.`,
		Example: `  esv2 --db app.db subscriptions list`,
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				list, err := opsOf(c).list(cmd.Context())
				if err != nil {
					return err
				}
				if a.json {
					for _, s := range list {
						if err := printJSON(a.stdout, map[string]any{
							"name": s.Name, "partitions": len(s.Partitions), "position": s.Position,
							"head": s.Head, "lag": s.Lag, "parked": s.Parked,
						}); err != nil {
							return err
						}
					}
					return nil
				}
				t := newTable(a.stdout, "NAME", "PARTITIONS", "POSITION", "HEAD", "LAG", "PARKED")
				for _, s := range list {
					t.row(s.Name, strconv.Itoa(len(s.Partitions)), u(s.Position), u(s.Head), u(s.Lag), strconv.Itoa(s.Parked))
				}
				return t.flush()
			})
		},
	}
}

func (a *app) subsResetCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "reset NAME --to start|end|POSITION",
		Short: "Move every partition of a subscription to a position",
		Long: `Move every partition of subscription NAME to the start (to rebuild its read
model: empty it first), to the end (to skip to now), or past POSITION.
Running members lose their leases and resume from the new position.`,
		Example: `  esv2 --db app.db subscriptions reset projector --to start
  esv2 --db app.db subscriptions reset projector --to 1500`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var from eventstore.Start
			switch to {
			case "":
				return usageErr("give --to start, end or a position")
			case "start":
				from = eventstore.FromStart()
			case "end":
				from = eventstore.FromEnd()
			default:
				p, err := strconv.ParseUint(to, 10, 64)
				if err != nil {
					return usageErr("--to wants start, end or a position, got %q", to)
				}
				from = eventstore.After(p)
			}
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				if err := opsOf(c).reset(cmd.Context(), argv[0], from); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "subscription %q reset to %s\n", argv[0], from)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "`start`, end or a position")
	return cmd
}

func (a *app) subsParkedCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "parked NAME",
		Short: "List the events a subscription parked, with their errors",
		Long: `List the events subscription NAME parked, in position order: the event, the
handler's attempts and last error, when it was parked (or its requested
replay last failed), and when a replay was requested that no running member
has tried yet (REPLAY; "-" for none).`,
		Example: `  esv2 --db app.db subscriptions parked projector --json`,
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withStore(cmd.Context(), readOnly, func(c *conn) error {
				list, err := opsOf(c).parked(cmd.Context(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					for _, p := range list {
						if err := printJSON(a.stdout, map[string]any{
							"position": p.Position, "stream": p.StreamID, "version": p.Version, "type": p.Type,
							"id": p.EventID, "error": p.Error, "attempts": p.Attempts, "time": formatTime(p.Time),
							"replay_requested": jsonTime(p.ReplayRequested),
						}); err != nil {
							return err
						}
					}
					return nil
				}
				t := newTable(a.stdout, "POSITION", "STREAM", "VERSION", "TYPE", "ATTEMPTS", "PARKED", "REPLAY", "ERROR")
				for _, p := range list {
					replay := "-"
					if !p.ReplayRequested.IsZero() {
						replay = formatTime(p.ReplayRequested)
					}
					t.row(u(p.Position), p.StreamID, u(p.Version), p.Type, strconv.Itoa(p.Attempts), formatTime(p.Time), replay, p.Error)
				}
				return t.flush()
			})
		},
	}
}

func (a *app) subsDiscardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "discard NAME POSITION",
		Short: "Forget a parked event without handling it",
		Long: `Forget the event subscription NAME parked at POSITION, without handling it.
Exit status 3 when there is no such parked event.`,
		Example: `  esv2 --db app.db subscriptions discard projector 1234`,
		Args:    args(2, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			p, err := strconv.ParseUint(argv[1], 10, 64)
			if err != nil {
				return usageErr("POSITION must be a number, got %q", argv[1])
			}
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				if err := opsOf(c).discard(cmd.Context(), argv[0], p); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "discarded the event subscription %q parked at position %d\n", argv[0], p)
				return nil
			})
		},
	}
}
