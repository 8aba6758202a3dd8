package eventstore

import (
	"context"
	"strconv"
)

// Metadata keys esv2 writes and reads. Application code may read and filter
// on them ([MetadataEquals]); the esv2. prefix is esv2's.
const (
	// CorrelationIDKey holds the ID of the conversation an event belongs
	// to: the first request or message of a chain of commands and events,
	// kept unchanged along it. Set it with [WithCorrelationID].
	CorrelationIDKey = "esv2.correlation_id"
	// CausationIDKey holds the ID of what directly caused an event: the
	// command (aggregate.Repository.Update with aggregate.WithCommandID
	// sets it to the command ID's digest, aggregate.CommandDigest) or the
	// event a handler reacted to. Set it
	// with [WithCausationID].
	CausationIDKey = "esv2.causation_id"
	// TraceParentKey and TraceStateKey hold the W3C trace context
	// (traceparent and tracestate headers) of the request that appended
	// an event, when the store is wrapped by package esotel, so that the
	// span of a subscription's handler links to the appending span.
	TraceParentKey = "esv2.traceparent"
	TraceStateKey  = "esv2.tracestate"
)

// metadataKey is the context key of the metadata Append adds to events.
type metadataKey struct{}

// WithMetadata returns a context whose appends add md to every event's
// metadata: Append (of every store opened with this module's adapters)
// merges it into each event, the event's own keys winning. Pairs given by
// an outer WithMetadata stay unless md sets the same key. md is copied;
// an empty md returns ctx unchanged.
//
// It is how a request's correlation and causation reach the events it
// causes without every call threading them: set them once, in the
// middleware that reads the request's headers, and every Save, Update and
// Append made with that context carries them.
func WithMetadata(ctx context.Context, md map[string]string) context.Context {
	if len(md) == 0 {
		return ctx
	}
	prev, _ := ctx.Value(metadataKey{}).(map[string]string)
	merged := make(map[string]string, len(prev)+len(md))
	for k, v := range prev {
		merged[k] = v
	}
	for k, v := range md {
		merged[k] = v
	}
	return context.WithValue(ctx, metadataKey{}, merged)
}

// WithCorrelationID returns a context whose appends set [CorrelationIDKey]
// to id (see [WithMetadata]).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return WithMetadata(ctx, map[string]string{CorrelationIDKey: id})
}

// WithCausationID returns a context whose appends set [CausationIDKey] to
// id (see [WithMetadata]).
func WithCausationID(ctx context.Context, id string) context.Context {
	return WithMetadata(ctx, map[string]string{CausationIDKey: id})
}

// CausedBy returns a context for the commands a handler runs in reaction
// to e: their events keep e's correlation ID (or take e's ID, or its
// stream and version when it has none, as the start of a chain) and have
// e as their cause.
func CausedBy(ctx context.Context, e Recorded) context.Context {
	id := e.ID
	if id == "" {
		id = e.StreamID + "@" + strconv.FormatUint(e.Version, 10)
	}
	corr := e.Metadata[CorrelationIDKey]
	if corr == "" {
		corr = id
	}
	return WithMetadata(ctx, map[string]string{CorrelationIDKey: corr, CausationIDKey: id})
}

// MetadataFrom returns the metadata ctx adds to appended events (see
// [WithMetadata]), nil when none (or when ctx is nil). The map must not be
// modified.
func MetadataFrom(ctx context.Context) map[string]string {
	if ctx == nil {
		return nil
	}
	md, _ := ctx.Value(metadataKey{}).(map[string]string)
	return md
}

// MergeMetadata returns events with md added to each one's metadata, the
// events' own keys winning. It returns events itself when md is empty, and
// otherwise new events and maps: the caller's are not modified. Stores
// call it in Append with [MetadataFrom]; a Store implementation of its own
// should too.
func MergeMetadata(events []Event, md map[string]string) []Event {
	if len(md) == 0 || len(events) == 0 {
		return events
	}
	out := make([]Event, len(events))
	for i, e := range events {
		m := make(map[string]string, len(md)+len(e.Metadata))
		for k, v := range md {
			m[k] = v
		}
		for k, v := range e.Metadata {
			m[k] = v
		}
		e.Metadata = m
		out[i] = e
	}
	return out
}
