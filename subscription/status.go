package subscription

import (
	"context"
	"time"

	"github.com/esv2/esv2/internal/validate"
)

// State is what a running subscription is doing.
type State int

const (
	// Stopped means Run is not running.
	Stopped State = iota
	// Standby means running, but holding no partition (the group's other
	// members hold them all); it takes over when one of them leaves or
	// dies.
	Standby
	// CatchingUp means handling events stored before it reached the head.
	CatchingUp
	// Live means caught up: it hands over events as they are appended.
	Live
)

// String returns "stopped", "standby", "catching up" or "live".
func (s State) String() string {
	switch s {
	case Standby:
		return "standby"
	case CatchingUp:
		return "catching up"
	case Live:
		return "live"
	}
	return "stopped"
}

// Status is a snapshot of a subscription member's state, for metrics and
// health checks.
type Status struct {
	Name, Member string
	State        State
	// Partitions are those this member holds, in order.
	Partitions []int
	// Position is the lowest position up to which this member's partitions
	// were handled.
	Position uint64
	// Head is the store's last position, as last seen.
	Head uint64
	// Lag is Head - Position: how many positions behind the head this
	// member is (the number of events, where positions are dense).
	Lag uint64
	// LagTime is the time between the last event handled and the head's,
	// 0 when live.
	LagTime time.Duration
	// Delivered counts the events handed to the handler successfully,
	// Retries the batches tried again, Parked the events set aside.
	Delivered, Retries, Parked uint64
	// Replayed counts the parked events this member replayed at a
	// request ([RequestReplay]) and forgot, ReplayFailed those the
	// handler failed on again, which stay parked.
	Replayed, ReplayFailed uint64
	// Err is the last database error Run met and is trying past, nil once
	// a batch succeeds again.
	Err error
}

// Status returns the subscription's state now.
func (s *Subscription) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Partitions = append([]int(nil), s.st.Partitions...)
	if st.Head > st.Position {
		st.Lag = st.Head - st.Position
	} else {
		st.Lag = 0
	}
	return st
}

// WaitFor waits until every partition of the subscription was handled up to
// position (say, the position of an event a request appended, from
// AppendResult), so that a read model can be read with that write in it. It
// returns ctx's error if ctx ends first. A member holding every partition
// waits on its own progress; otherwise WaitFor also polls the stored
// checkpoints, which the group's other members write.
func (s *Subscription) WaitFor(ctx context.Context, position uint64) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	poll := time.Duration(0)
	for {
		s.mu.Lock()
		ch := s.progress
		local, all := s.reachedLocked(position)
		done := make(map[int]uint64, len(s.done))
		for p, v := range s.done {
			done[p] = v
		}
		s.mu.Unlock()
		if local {
			return nil
		}
		if !all {
			ok, err := s.storedReach(ctx, position, done)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			poll = min(max(2*poll, time.Millisecond), 50*time.Millisecond)
		} else {
			poll = 0
		}
		var tick <-chan time.Time
		var t *time.Timer
		if poll > 0 {
			t = time.NewTimer(poll)
			tick = t.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// reachedLocked reports whether this member alone knows position is
// handled everywhere, and whether it holds every partition.
func (s *Subscription) reachedLocked(position uint64) (reached, all bool) {
	if s.n == 0 || len(s.done) != s.n {
		return false, false
	}
	for _, v := range s.done {
		if v < position {
			return false, true
		}
	}
	return true, true
}

// storedReach reads the stored checkpoints, raised by what this member
// handled and has not written yet.
func (s *Subscription) storedReach(ctx context.Context, position uint64, done map[int]uint64) (bool, error) {
	parts, err := s.b.Partitions(ctx, s.name)
	if err != nil {
		return false, err
	}
	if len(parts) == 0 {
		return false, nil
	}
	for _, p := range parts {
		if max(p.Position, done[p.Partition]) < position {
			return false, nil
		}
	}
	return true, nil
}
