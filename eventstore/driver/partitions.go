package driver

import (
	"context"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/watch"
)

// PartitionReader is implemented by drivers whose ReadPage applies
// Filter.Partitions in the database (a stream hash kept with each event
// makes it an integer test per row). For other drivers the front applies
// it to their pages, which then carry every partition's events over the
// wire: correct, and as costly as reading them all.
type PartitionReader interface {
	// ReadsPartitions reports whether ReadPage applies Filter.Partitions;
	// a wrapper over another driver answers for the one it wraps.
	ReadsPartitions() bool
}

// readPage is the driver's ReadPage, with Filter.Partitions applied by the
// front for a driver that does not apply it. The page keeps the
// driver's contract: it is short of r.Limit only at the end of the range
// or once its events reach eventstore.PageBytes, however few of the
// events read are kept; so it may take several of the driver's pages,
// each bounded, from successive keys.
func (f *Front) readPage(ctx context.Context, q *Query, r Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	p := q.Filter.Partitions
	if p.Count == 0 || f.partitions {
		return f.d.ReadPage(ctx, q, r, page)
	}
	start, bytes, limit := len(page), 0, r.Limit
	var raw []eventstore.Recorded
	for {
		var err error
		raw, err = f.d.ReadPage(ctx, q, r, raw[:0])
		if err != nil {
			return page, err
		}
		for _, e := range raw {
			if p.Keeps(e.StreamID) {
				page = append(page, e)
				bytes += eventstore.EventSize(e.Event)
			}
		}
		kept := len(page) - start
		if !watch.PageFull(raw, r.Limit) || kept >= limit || bytes >= eventstore.PageBytes {
			return page, nil
		}
		// Partitions apply to AllStreams only: the keys are positions.
		last := raw[len(raw)-1].Position
		if q.Backwards {
			if last <= r.From {
				return page, nil
			}
			r.To = last - 1
		} else {
			if last >= r.To {
				return page, nil
			}
			r.From = last + 1
		}
		r.Limit = limit - kept
		clear(raw) // reused: it must not keep the dropped events alive
	}
}
