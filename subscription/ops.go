package subscription

import (
	"context"
	"errors"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Info describes a stored subscription, for List.
type Info struct {
	Name string
	// Partitions are its partitions, in order.
	Partitions []Partition
	// Position is the lowest position of its partitions.
	Position uint64
	// Head is the store's last position when List read it.
	Head uint64
	// Lag is Head - Position.
	Lag uint64
	// Parked counts its parked events.
	Parked int
}

// List returns the subscriptions stored in store's database, by name, with
// their positions and lag.
func List[Tx any](ctx context.Context, store Store[Tx]) ([]Info, error) {
	b, err := backendOf(ctx, store)
	if err != nil {
		return nil, err
	}
	info, err := store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return nil, err
	}
	parts, err := b.Partitions(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, p := range parts {
		if len(out) == 0 || out[len(out)-1].Name != p.Subscription {
			out = append(out, Info{Name: p.Subscription, Position: p.Position, Head: info.Position})
		}
		in := &out[len(out)-1]
		in.Partitions = append(in.Partitions, p)
		in.Position = min(in.Position, p.Position)
	}
	for i := range out {
		if out[i].Head > out[i].Position {
			out[i].Lag = out[i].Head - out[i].Position
		}
		parked, err := b.Parked(ctx, out[i].Name)
		if err != nil {
			return nil, err
		}
		out[i].Parked = len(parked)
	}
	return out, nil
}

// Reset moves every partition of subscription name to from (FromStart to
// rebuild a read model from the first event, FromEnd to skip to the head,
// After(p) past position p). Members running it lose their leases (their
// next checkpoint fails with ErrLeaseLost, so they write nothing more of
// the old run) and resume from the new position. A transactional read
// model rebuilt from the start must be emptied by the caller first, or
// its handler must tolerate events it has seen. It returns an error
// satisfying errors.Is(err, eventstore.ErrNotFound) when there is no such
// subscription.
func Reset[Tx any](ctx context.Context, store Store[Tx], name string, from eventstore.Start) error {
	b, err := backendOf(ctx, store)
	if err != nil {
		return err
	}
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	pos, fromEnd := from.Cursor()
	if fromEnd {
		info, err := store.Info(ctx, eventstore.AllStreams)
		if err != nil {
			return err
		}
		pos = info.Position
	}
	if err := b.Reset(ctx, name, pos); err != nil {
		return fmt.Errorf("subscription %q: reset: %w", name, err)
	}
	return nil
}

// Delete removes subscription name from the database: its checkpoints,
// members and parked events. Stop its members first: a running one
// creates it again (from the start given by its WithStart) at its next
// lease renewal, and hands the events over again from there.
// It returns an error satisfying errors.Is(err, eventstore.ErrNotFound)
// when there is no such subscription.
func Delete[Tx any](ctx context.Context, store Store[Tx], name string) error {
	b, err := backendOf(ctx, store)
	if err != nil {
		return err
	}
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	if err := b.Delete(ctx, name); err != nil {
		return fmt.Errorf("subscription %q: delete: %w", name, err)
	}
	return nil
}

// ListParked returns the events subscription name set aside under the Park
// policy, in position order.
func ListParked[Tx any](ctx context.Context, store Store[Tx], name string) ([]Parked, error) {
	b, err := backendOf(ctx, store)
	if err != nil {
		return nil, err
	}
	if err := checkName("subscription name", name); err != nil {
		return nil, err
	}
	return b.Parked(ctx, name)
}

// DiscardParked forgets the parked event of subscription name at position
// without handling it. It returns an error satisfying errors.Is(err,
// eventstore.ErrNotFound) when there is none.
func DiscardParked[Tx any](ctx context.Context, store Store[Tx], name string, position uint64) error {
	if _, err := backendOf(ctx, store); err != nil {
		return err
	}
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	return store.Subscriptions().Unpark(ctx, name, position, nil)
}

// RequestReplay asks the running members of subscription name to replay
// its parked event at position: it is for a process that has no handler
// of its own, such as the esv2 command. The member that holds the event's
// partition looks for requests at each of its lease renewals (every
// third of the lease TTL, at most a second apart) and replays each one
// as [Subscription.ReplayParked] does: the event is handed to the handler
// (in its transaction, for a subscription made by NewTx) and, if that
// succeeds, forgotten. If the handler fails again, the event stays parked
// with the new error and time, and its request is cleared, so that it is
// not tried in a loop. Nothing happens while no member runs: the request
// waits for one.
//
// It returns the number of events marked (1), or an error satisfying
// errors.Is(err, eventstore.ErrNotFound) when there is no such
// subscription or parked event. Requesting a requested event again
// renews its request. ListParked shows the requests
// (Parked.ReplayRequested).
func RequestReplay[Tx any](ctx context.Context, store Store[Tx], name string, position uint64) (int, error) {
	b, err := backendOf(ctx, store)
	if err != nil {
		return 0, err
	}
	if err := checkName("subscription name", name); err != nil {
		return 0, err
	}
	if position == 0 {
		return 0, fmt.Errorf("subscription %q: no parked event at position 0: %w", name, eventstore.ErrNotFound)
	}
	return requestReplay(ctx, b, name, position)
}

// requestReplay marks the parked event of name at position (every one
// with position 0).
func requestReplay(ctx context.Context, b core, name string, position uint64) (int, error) {
	n, err := b.RequestReplay(ctx, name, position)
	if err != nil {
		return 0, fmt.Errorf("subscription %q: request replay: %w", name, err)
	}
	return n, nil
}

// RequestReplayAll is [RequestReplay] for every event subscription name
// has parked now. It returns how many it marked (0 when none is parked),
// or an error satisfying errors.Is(err, eventstore.ErrNotFound) when
// there is no such subscription.
func RequestReplayAll[Tx any](ctx context.Context, store Store[Tx], name string) (int, error) {
	b, err := backendOf(ctx, store)
	if err != nil {
		return 0, err
	}
	if err := checkName("subscription name", name); err != nil {
		return 0, err
	}
	return requestReplay(ctx, b, name, 0)
}

// ReplayParked hands the parked event at position to the subscription's
// handler again and, if it succeeds, forgets it (in the handler's
// transaction, for a subscription made by NewTx). The handler's error is
// returned as it is, and the event stays parked. It returns an error
// satisfying errors.Is(err, eventstore.ErrNotFound) when there is no
// such parked event. The subscription need not be running.
func (s *Subscription) ReplayParked(ctx context.Context, position uint64) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	parked, err := s.b.Parked(ctx, s.name)
	if err != nil {
		return err
	}
	found := false
	for _, p := range parked {
		if p.Position == position {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("subscription %q: no parked event at position %d: %w", s.name, position, eventstore.ErrNotFound)
	}
	e, err := s.readEvent(ctx, position)
	if err != nil {
		return err
	}
	err = s.replay(ctx, e)
	if hf := (*handlerError)(nil); errors.As(err, &hf) {
		return hf.err
	}
	return err
}

// readEvent reads the event at position, or returns an error satisfying
// errors.Is(err, errNotStored) when it is no longer stored.
func (s *Subscription) readEvent(ctx context.Context, position uint64) (eventstore.Recorded, error) {
	var e eventstore.Recorded
	n := 0
	for r, err := range s.store.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(position - 1), Limit: 1}) {
		if err != nil {
			return e, err
		}
		e, n = r, 1
	}
	if n == 0 || e.Position != position {
		return e, fmt.Errorf("subscription %q: parked event at position %d %w", s.name, position, errNotStored)
	}
	return e, nil
}

func backendOf[Tx any](ctx context.Context, store Store[Tx]) (core, error) {
	if err := validate.Context(ctx); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, invalid("store", "nil")
	}
	b := store.Subscriptions()
	if b == nil {
		return nil, invalid("store", "its Subscriptions method returned nil")
	}
	return b, nil
}
