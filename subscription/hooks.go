package subscription

import (
	"context"
	"log/slog"

	"github.com/esv2/esv2/eventstore"
)

// Hooks lets instrumentation (tracing, metrics; package esotel provides
// one) see a subscription's work. Every field is optional; a nil field
// costs nothing.
type Hooks struct {
	// Batch is called before each call of the handler (each attempt of
	// a batch, and each one-event call of the Park policy). The context
	// it returns is the handler's; done is called with the handler's
	// result (nil, or its error) once the call returned. done may be nil.
	Batch func(ctx context.Context, b BatchInfo) (handlerCtx context.Context, done func(err error))
	// Parked is called for each event set aside by the Park policy, with
	// the handler's last error.
	Parked func(ctx context.Context, subscription string, e eventstore.Recorded, err error)
	// Replayed is called for each parked event a member replayed at a
	// request ([RequestReplay]), with nil when the handler took it (it is
	// forgotten) and the handler's error when it failed again (it stays
	// parked).
	Replayed func(ctx context.Context, subscription string, p Parked, err error)
}

// BatchInfo describes a call of the handler to [Hooks].Batch.
type BatchInfo struct {
	// Subscription and Member name the subscription and this member.
	Subscription, Member string
	// Events is the batch; it must not be modified or kept.
	Events []eventstore.Recorded
	// Attempt counts the calls of the handler for this batch, from 1.
	Attempt int
	// Head is the store's last position as last seen: Head minus the
	// last event's position is how far behind the subscription is.
	Head uint64
}

// WithHooks sets the subscription's [Hooks].
func WithHooks(h Hooks) Option {
	return func(o *options) error {
		o.hooks = h
		return nil
	}
}

// WithLogger makes the subscription log to l: a handler's failed attempts
// that will be tried again at Debug, database errors it retries past and
// events it parks at Warn, and the error that stops Run at Error. Without
// it (or with nil) the subscription logs nothing. Pass the store and the
// repository the same logger for one consistent log.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		return nil
	}
}

// log writes to the logger, if any.
func (s *Subscription) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if s.o.logger == nil {
		return
	}
	attrs = append(attrs, slog.String("subscription", s.name), slog.String("member", s.o.member))
	s.o.logger.LogAttrs(ctx, level, msg, attrs...)
}

// handOver calls the handler through deliver, within the Batch hook when
// there is one.
func (r *run) handOver(ctx context.Context, cps []Lease, events []eventstore.Recorded, commit bool, attempt int) error {
	s := r.s
	if s.o.hooks.Batch == nil || len(events) == 0 {
		return s.deliver(ctx, s.o.member, cps, events, commit)
	}
	s.mu.Lock()
	head := s.st.Head
	s.mu.Unlock()
	hctx, done := s.o.hooks.Batch(ctx, BatchInfo{Subscription: s.name, Member: s.o.member, Events: events, Attempt: attempt, Head: head})
	if hctx == nil {
		hctx = ctx
	}
	err := s.deliver(hctx, s.o.member, cps, events, commit)
	if done != nil {
		done(err)
	}
	return err
}
