package esotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/esv2/esv2/eventstore"
)

var _ eventstore.Lifecycle = (*Store)(nil)

// lifecycle returns the wrapped store's deletion ability.
func (s *Store) lifecycle() (eventstore.Lifecycle, error) {
	l, ok := s.inner.(eventstore.Lifecycle)
	if !ok {
		return nil, fmt.Errorf("esotel: %T cannot delete: %w", s.inner, errors.ErrUnsupported)
	}
	return l, nil
}

// DeleteStream deletes a stream through the wrapped store, in an
// "esv2.stream.delete" span; see [eventstore.Lifecycle]. A wrapped store
// without that ability answers errors.ErrUnsupported.
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	l, err := s.lifecycle()
	if err != nil || ctx == nil {
		if err != nil {
			return err
		}
		return l.DeleteStream(ctx, streamID, expected)
	}
	ctx, span := s.start(ctx, "esv2.stream.delete", trace.SpanKindClient, AttrStream.String(streamID), AttrExpectedVersion.String(expected.String()))
	defer span.End()
	err = l.DeleteStream(ctx, streamID, expected)
	var conflict *eventstore.ConflictError
	switch {
	case errors.As(err, &conflict):
		span.SetAttributes(AttrConflict.Bool(true), AttrVersion.Int64(int64(conflict.Actual)))
		fail(span, err)
	case err != nil:
		fail(span, err)
	}
	return err
}

// TruncateStream truncates a stream through the wrapped store, in an
// "esv2.stream.truncate" span (esv2.version is before); see
// [eventstore.Lifecycle].
func (s *Store) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	l, err := s.lifecycle()
	if err != nil || ctx == nil {
		if err != nil {
			return err
		}
		return l.TruncateStream(ctx, streamID, before)
	}
	ctx, span := s.start(ctx, "esv2.stream.truncate", trace.SpanKindClient, AttrStream.String(streamID), AttrVersion.Int64(int64(min(before, 1<<63-1))))
	defer span.End()
	if err = l.TruncateStream(ctx, streamID, before); err != nil {
		fail(span, err)
	}
	return err
}

// DeleteSnapshots deletes snapshots through the wrapped store, in an
// "esv2.snapshot.delete" span; see [eventstore.Lifecycle].
func (s *Store) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	l, err := s.lifecycle()
	if err != nil || ctx == nil {
		if err != nil {
			return err
		}
		return l.DeleteSnapshots(ctx, streamID, name)
	}
	ctx, span := s.start(ctx, "esv2.snapshot.delete", trace.SpanKindClient, AttrStream.String(streamID), AttrSnapshot.String(name))
	defer span.End()
	if err = l.DeleteSnapshots(ctx, streamID, name); err != nil {
		fail(span, err)
	}
	return err
}
