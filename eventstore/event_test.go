package eventstore_test

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
)

func TestExpectedVersionMatches(t *testing.T) {
	for _, c := range []struct {
		expected eventstore.ExpectedVersion
		current  uint64
		want     bool
	}{
		{eventstore.Any, 0, true},
		{eventstore.Any, 7, true},
		{eventstore.NoStream, 0, true},
		{eventstore.NoStream, 1, false},
		{eventstore.StreamExists, 0, false},
		{eventstore.StreamExists, 1, true},
		{eventstore.StreamExists, 1 << 40, true},
		{eventstore.Exact(0), 0, true},
		{eventstore.Exact(3), 3, true},
		{eventstore.Exact(3), 2, false},
		{eventstore.Exact(3), 4, false},
		{eventstore.ExpectedVersion(5), 5, true},
		{eventstore.Exact(1<<63 - 1), 1<<63 - 1, true},
		{eventstore.Exact(1 << 63), 1 << 63, false}, // not representable: invalid
		{eventstore.ExpectedVersion(-3), 0, false},
		{eventstore.ExpectedVersion(-100), 3, false},
	} {
		if got := c.expected.Matches(c.current); got != c.want {
			t.Errorf("ExpectedVersion(%d).Matches(%d) = %v, want %v", int64(c.expected), c.current, got, c.want)
		}
	}
}

func TestExpectedVersionString(t *testing.T) {
	for _, c := range []struct {
		expected eventstore.ExpectedVersion
		want     string
	}{
		{eventstore.Any, "any"},
		{eventstore.NoStream, "no stream"},
		{eventstore.Exact(0), "no stream"},
		{eventstore.StreamExists, "stream exists"},
		{eventstore.Exact(1), "1"},
		{eventstore.Exact(42), "42"},
		{eventstore.ExpectedVersion(-3), "invalid(-3)"},
		{eventstore.Exact(1 << 63), "invalid(-3)"},
	} {
		if got := c.expected.String(); got != c.want {
			t.Errorf("ExpectedVersion(%d).String() = %q, want %q", int64(c.expected), got, c.want)
		}
	}
}

func TestExpectedVersionValid(t *testing.T) {
	for _, c := range []struct {
		expected eventstore.ExpectedVersion
		want     bool
	}{
		{eventstore.Any, true},
		{eventstore.NoStream, true},
		{eventstore.StreamExists, true},
		{eventstore.Exact(9), true},
		{eventstore.Exact(1 << 63), false},
		{eventstore.ExpectedVersion(-3), false},
	} {
		if got := c.expected.Valid(); got != c.want {
			t.Errorf("ExpectedVersion(%d).Valid() = %v, want %v", int64(c.expected), got, c.want)
		}
	}
}

func TestMetadataOpString(t *testing.T) {
	for op, want := range map[eventstore.MetadataOp]string{
		eventstore.MetadataEq:     "eq",
		eventstore.MetadataIn:     "in",
		eventstore.MetadataPrefix: "prefix",
		0:                         "unknown",
		99:                        "unknown",
	} {
		if got := op.String(); got != want {
			t.Errorf("MetadataOp(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}
