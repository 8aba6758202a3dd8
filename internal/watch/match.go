package watch

import (
	"slices"
	"strings"

	"github.com/esv2/esv2/eventstore"
)

// Match reports whether r passes f, as the adapters' SQL decides, so that
// a filtered watcher at a shared Tail's head can filter the Tail's pages
// itself. Every condition is a comparison of bytes in both databases,
// with nothing in it that Go would do otherwise: the stream prefix is a
// byte range on SQLite (stream_id >= prefix AND stream_id < prefix with
// its last byte incremented, BINARY collation) and starts_with on
// PostgreSQL; types and metadata values are compared with = (a
// deterministic collation compares equal strings as equal bytes); a
// metadata prefix is substr(value, 1, length(prefix)) = prefix on SQLite
// (characters of valid UTF-8, the same as bytes) and starts_with on
// PostgreSQL; a missing metadata key fails every condition (NULL); the
// partitions are eventstore.PartitionOf's, whose hash PostgreSQL stores. The
// conformance suite's Read/Filter cases pin these rules, the literal keys
// and values (%, _, \, quotes, dots) included, and its Watch/FilteredAtHead
// case checks that what watchers at the head yield equals the filtered
// read.
func Match(f eventstore.Filter, r eventstore.Recorded) bool {
	if !strings.HasPrefix(r.StreamID, f.StreamPrefix) {
		return false
	}
	if !f.Partitions.Keeps(r.StreamID) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, r.Type) {
		return false
	}
	for _, c := range f.Metadata {
		v, ok := r.Metadata[c.Key]
		if !ok {
			return false
		}
		switch c.Op {
		case eventstore.MetadataEq:
			if v != c.Values[0] {
				return false
			}
		case eventstore.MetadataIn:
			if !slices.Contains(c.Values, v) {
				return false
			}
		case eventstore.MetadataPrefix:
			if !strings.HasPrefix(v, c.Values[0]) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
