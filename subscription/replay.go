package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// errNotStored reports a parked event that was deleted from the store
// (its stream deleted or truncated) since it was parked.
var errNotStored = fmt.Errorf("is no longer stored: %w", eventstore.ErrNotFound)

// maxReplaysPerSync bounds the requested replays a member makes at one
// lease renewal, so that a request for thousands of parked events does
// not hold up its live work (or its leases) for long: the rest wait for
// the next renewal.
const maxReplaysPerSync = 100

// replayRequested replays the parked events whose replay was requested
// (RequestReplay) and that lie in a partition this member holds: their
// owner replays them, and no one else. It runs after each sync, so that a
// request waits at most a sync period (a third of the lease TTL, at most
// a second) once a member holds the event's partition, at the cost of one
// query per sync, which the backends answer from a partial index.
//
// An event the handler takes is forgotten (in the handler's transaction,
// for NewTx); one it fails on again stays parked with the new error and
// time, its request cleared so that it is not tried in a loop (unless it
// was requested again meanwhile: ClearReplay keeps a newer request, and
// does not park again an event discarded meanwhile). The
// request is cleared too for an event no longer stored. A backend error
// ends the round and is returned; the requests left are tried at the
// next sync.
func (r *run) replayRequested(ctx context.Context) error {
	s := r.s
	if len(r.leases) == 0 {
		return nil
	}
	reqs, err := s.b.ReplayRequests(ctx, s.name)
	if err != nil {
		return err
	}
	done := 0
	for _, p := range reqs {
		if _, ok := r.leases[PartitionOf(p.StreamID, r.n)]; !ok {
			continue
		}
		if done == maxReplaysPerSync {
			// The rest at the next sync, which comes at once.
			r.nextSync = time.Time{}
			break
		}
		done++
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.expiring(time.Now()) {
			if err := r.renew(ctx); err != nil {
				return err
			}
			if _, ok := r.leases[PartitionOf(p.StreamID, r.n)]; !ok {
				continue
			}
		}
		if err := r.replayOne(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// replayOne replays the parked event p at a request.
func (r *run) replayOne(ctx context.Context, p Parked) error {
	s := r.s
	e, err := s.readEvent(ctx, p.Position)
	if err == nil {
		err = s.replay(ctx, e)
	}
	var hf *handlerError
	switch {
	case err == nil:
		s.count(func(st *Status) { st.Replayed++ })
		s.log(ctx, slog.LevelInfo, "esv2: subscription replayed a parked event at a request",
			slog.Uint64("position", p.Position), slog.String("stream", p.StreamID), slog.Uint64("version", p.Version))
		if s.o.hooks.Replayed != nil {
			s.o.hooks.Replayed(ctx, s.name, p, nil)
		}
		return nil
	case errors.Is(err, errNotStored):
		hf = &handlerError{err}
	case errors.As(err, &hf):
	case errors.Is(err, eventstore.ErrNotFound):
		// Discarded, or replayed by another process, meanwhile.
		return nil
	default:
		return err
	}
	text := hf.err.Error()
	if len(text) > maxErrorTextSize {
		text = text[:maxErrorTextSize]
	}
	p.Error = text
	p.Attempts++
	p.Time = time.Now().Truncate(eventstore.TimePrecision)
	if _, err := s.b.ClearReplay(ctx, s.name, p); err != nil {
		return err
	}
	s.count(func(st *Status) { st.ReplayFailed++ })
	s.log(ctx, slog.LevelWarn, "esv2: subscription failed to replay a parked event at a request; it stays parked",
		slog.Uint64("position", p.Position), slog.String("stream", p.StreamID), slog.Uint64("version", p.Version),
		slog.String("error", hf.err.Error()))
	if s.o.hooks.Replayed != nil {
		s.o.hooks.Replayed(ctx, s.name, p, hf.err)
	}
	return nil
}
