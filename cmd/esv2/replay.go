package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// replayPoll is how often replay --wait reads the parked events again.
const replayPoll = 100 * time.Millisecond

// errReplayFailed and errReplayTimeout end replay --wait with exit status
// 1, each with its own message.
var (
	errReplayFailed  = errors.New("the handler failed again")
	errReplayTimeout = errors.New("timed out")
)

func (a *app) subsReplayCommand() *cobra.Command {
	var all bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "replay NAME (POSITION... | --all) [--wait DURATION]",
		Short: "Ask a subscription's running members to replay parked events",
		Long: `Request a replay of the events subscription NAME parked at each POSITION, or
of all of them with --all. The command cannot run the subscription's handler:
it marks the events, and the running member of the subscription that holds
an event's partition replays it at its next lease renewal (within a second
with the default lease). An event the handler takes is forgotten; one it
fails on again stays parked with the new error, and its request is cleared.
While no member runs, the requests wait ("subscriptions parked" shows them).

With --wait, the command waits up to DURATION for the outcome and prints it
for each event: exit status 0 when every one was replayed, 1 when the
handler failed again on one (its new error is printed) or when the wait ran
out first (no member running, or a member busy). Exit status 3 when there
is no such subscription or parked event, and then nothing is requested.`,
		Example: `  esv2 --db app.db subscriptions replay projector 1234
  esv2 --db app.db subscriptions replay projector --all --wait 10s
  esv2 --db app.db subscriptions replay projector 1234 1240 --wait 5s --json`,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return usageErr("%s takes the subscription's NAME, then positions (or --all)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			var positions []uint64
			for _, s := range argv[1:] {
				p, err := strconv.ParseUint(s, 10, 64)
				if err != nil || p == 0 {
					return usageErr("POSITION must be a position (a number from 1), got %q", s)
				}
				if !slices.Contains(positions, p) {
					positions = append(positions, p)
				}
			}
			switch {
			case all && len(positions) > 0:
				return usageErr("give positions or --all, not both")
			case !all && len(positions) == 0:
				return usageErr("give the positions of the parked events to replay, or --all")
			case wait < 0:
				return usageErr("--wait wants a positive duration, got %v", wait)
			}
			return a.withStore(cmd.Context(), writeExisting, func(c *conn) error {
				ops := opsOf(c)
				requested, err := a.requestReplays(cmd.Context(), ops, name, positions)
				if err != nil {
					return err
				}
				if wait == 0 {
					return a.printRequested(name, requested)
				}
				return a.waitReplays(cmd.Context(), ops, name, requested, wait)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "replay every event the subscription parked")
	f.DurationVar(&wait, "wait", 0, "wait up to `DURATION` for the replays' outcome (0: do not wait)")
	return cmd
}

// requestReplays requests the replays and returns the positions
// requested. Every position is checked first, so that a wrong one
// requests nothing.
func (a *app) requestReplays(ctx context.Context, ops subOps, name string, positions []uint64) ([]uint64, error) {
	parked, err := ops.parked(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, p := range positions {
		if !slices.ContainsFunc(parked, func(e subscription.Parked) bool { return e.Position == p }) {
			return nil, fmt.Errorf("subscription %q has no event parked at position %d: %w", name, p, eventstore.ErrNotFound)
		}
	}
	if len(positions) == 0 {
		// --all: those marked are those requested now.
		if _, err := ops.replay(ctx, name, 0); err != nil {
			return nil, err
		}
		parked, err := ops.parked(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, e := range parked {
			if !e.ReplayRequested.IsZero() {
				positions = append(positions, e.Position)
			}
		}
		return positions, nil
	}
	for _, p := range positions {
		if _, err := ops.replay(ctx, name, p); err != nil {
			return nil, err
		}
	}
	return positions, nil
}

func (a *app) printRequested(name string, positions []uint64) error {
	if a.json {
		for _, p := range positions {
			if err := printJSON(a.stdout, map[string]any{"subscription": name, "position": p, "status": "requested"}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(positions) == 0 {
		fmt.Fprintf(a.stdout, "subscription %q has no parked event to replay\n", name)
		return nil
	}
	fmt.Fprintf(a.stdout, "requested a replay of %d parked event(s) of subscription %q at position(s) %s; a running member replays them at its next lease renewal\n",
		len(positions), name, joinPositions(positions))
	return nil
}

// waitReplays polls the parked events until each requested one is gone
// (replayed) or no longer requested (failed again), or until wait ends.
func (a *app) waitReplays(ctx context.Context, ops subOps, name string, positions []uint64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pending := slices.Clone(positions)
	var failed []uint64
	report := func(p uint64, status, errText string) error {
		if a.json {
			v := map[string]any{"subscription": name, "position": p, "status": status}
			if errText != "" {
				v["error"] = errText
			}
			return printJSON(a.stdout, v)
		}
		switch status {
		case "replayed":
			fmt.Fprintf(a.stdout, "position %d: replayed\n", p)
		case "failed":
			fmt.Fprintf(a.stdout, "position %d: the handler failed again, still parked: %s\n", p, errText)
		default:
			fmt.Fprintf(a.stdout, "position %d: not replayed yet\n", p)
		}
		return nil
	}
	for len(pending) > 0 {
		parked, err := ops.parked(ctx, name)
		if err != nil {
			return err
		}
		var still []uint64
		for _, p := range pending {
			i := slices.IndexFunc(parked, func(e subscription.Parked) bool { return e.Position == p })
			switch {
			case i < 0:
				err = report(p, "replayed", "")
			case parked[i].ReplayRequested.IsZero():
				failed = append(failed, p)
				err = report(p, "failed", parked[i].Error)
			default:
				still = append(still, p)
			}
			if err != nil {
				return err
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			for _, p := range pending {
				if err := report(p, "pending", ""); err != nil {
					return err
				}
			}
			return fmt.Errorf("subscription %q: %w after %v waiting for the replay of %d event(s) at position(s) %s; is a member of the subscription running? (the requests stay)",
				name, errReplayTimeout, wait, len(pending), joinPositions(pending))
		}
		t := time.NewTimer(min(replayPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("subscription %q: %w on %d of %d event(s), at position(s) %s; they stay parked",
			name, errReplayFailed, len(failed), len(positions), joinPositions(failed))
	}
	return nil
}

func joinPositions(ps []uint64) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.FormatUint(p, 10)
	}
	return strings.Join(s, ", ")
}

// jsonTime is t in RFC 3339, or null when zero.
func jsonTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}
