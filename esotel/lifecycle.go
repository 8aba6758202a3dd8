package esotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/esv2/esv2/eventstore"
)

var _ eventstore.Lifecycle = (*Store)(nil)

// lifecycle returns the wrapped store's Lifecycle, or an error satisfying
// errors.Is(err, errors.ErrUnsupported) when it has none.
func (s *Store) lifecycle(op string) (eventstore.Lifecycle, error) {
	l, ok := s.inner.(eventstore.Lifecycle)
	if !ok {
		return nil, fmt.Errorf("esotel: %s: the wrapped %T %w", op, s.inner, errors.ErrUnsupported)
	}
	return l, nil
}

// DeleteStream deletes a stream through the wrapped store (see
// [eventstore.Lifecycle]), in an "esv2.delete_stream" span.
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	l, err := s.lifecycle("delete stream")
	if err != nil || ctx == nil {
		if err == nil {
			err = l.DeleteStream(ctx, streamID, expected)
		}
		return err
	}
	ctx, span := s.start(ctx, "esv2.delete_stream", trace.SpanKindClient, AttrStream.String(streamID), AttrExpectedVersion.String(expected.String()))
	defer span.End()
	if err := l.DeleteStream(ctx, streamID, expected); err != nil {
		fail(span, err)
		return err
	}
	return nil
}

// TruncateStream truncates a stream through the wrapped store, in an
// "esv2.truncate_stream" span.
func (s *Store) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	l, err := s.lifecycle("truncate stream")
	if err != nil || ctx == nil {
		if err == nil {
			err = l.TruncateStream(ctx, streamID, before)
		}
		return err
	}
	ctx, span := s.start(ctx, "esv2.truncate_stream", trace.SpanKindClient, AttrStream.String(streamID), AttrVersion.Int64(int64(before)))
	defer span.End()
	if err := l.TruncateStream(ctx, streamID, before); err != nil {
		fail(span, err)
		return err
	}
	return nil
}

// DeleteSnapshots deletes snapshots through the wrapped store, in an
// "esv2.snapshot.delete" span.
func (s *Store) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	l, err := s.lifecycle("delete snapshots")
	if err != nil || ctx == nil {
		if err == nil {
			err = l.DeleteSnapshots(ctx, streamID, name)
		}
		return err
	}
	ctx, span := s.start(ctx, "esv2.snapshot.delete", trace.SpanKindClient, AttrStream.String(streamID), AttrSnapshot.String(name))
	defer span.End()
	if err := l.DeleteSnapshots(ctx, streamID, name); err != nil {
		fail(span, err)
		return err
	}
	return nil
}
