package watch

import (
	"iter"

	"github.com/esv2/esv2/eventstore"
)

// PageFull reports whether a page read with a row limit of limit is full,
// that is whether the store stopped reading because the page held limit
// events or reached [eventstore.PageBytes]: then more events may follow at once, and
// the next page starts after its last event. A page that is not full ended
// at the end of what was visible.
//
// A store that ends pages at the byte budget must measure its events as
// EventSize does (never more), so that every page it cuts short is full by
// this measure; [Follow] and [HeadBounded] rely on it to tell a page cut
// short from the end.
func PageFull(events []eventstore.Recorded, limit int) bool {
	if len(events) >= limit {
		return true
	}
	n := 0
	for i := range events {
		if n += eventstore.EventSize(events[i].Event); n >= eventstore.PageBytes {
			return true
		}
	}
	return false
}

// ErrorSeq returns an iterator that yields err once: a read or watch refused
// before it starts.
func ErrorSeq(err error) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) { yield(eventstore.Recorded{}, err) }
}
