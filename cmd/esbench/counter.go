package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// The counter aggregate the benchmark loads: each event adds to N. Ref
// pads an event to a realistic size (about 50 bytes of msgpack).
type Counter struct {
	N int64
}

// CounterEvent is the counter's event type.
type CounterEvent interface{ isCounterEvent() }

// Added adds By to the counter.
type Added struct {
	By  int64
	Ref string
}

func (Added) isCounterEvent() {}

const (
	typeAdded     = "counter.added"
	counterSchema = "counter/v1"
)

func evolve(s Counter, e CounterEvent) Counter {
	if a, ok := e.(Added); ok {
		s.N += a.By
	}
	return s
}

func counterCodec() (*codec.Registry[CounterEvent], error) {
	reg := codec.New[CounterEvent]()
	if err := codec.Register[Added](reg, typeAdded); err != nil {
		return nil, err
	}
	return reg, nil
}

// driverLoad is load_snapshot's driver side: what Repository.Load does,
// written by hand on the bare driver. It reads the snapshot row, decodes
// the state with msgpack, then folds the events after it, decoded with
// msgpack straight into Added, and returns the counter's N.
func driverLoad(ctx context.Context, d driver, stream string) (int64, error) {
	var s Counter
	from := uint64(1)
	v, schema, data, err := d.snapshot(ctx, stream, eventstore.DefaultSnapshotName)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
	case err != nil:
		return 0, err
	case schema == counterSchema:
		if err := msgpack.Unmarshal(data, &s); err != nil {
			return 0, fmt.Errorf("decode snapshot: %w", err)
		}
		from = v + 1
	}
	var a Added
	_, err = d.read(ctx, stream, from, func(_ uint64, typ string, data []byte) error {
		if typ != typeAdded {
			return fmt.Errorf("unknown event type %q", typ)
		}
		a = Added{}
		if err := msgpack.Unmarshal(data, &a); err != nil {
			return err
		}
		s.N += a.By
		return nil
	})
	return s.N, err
}
