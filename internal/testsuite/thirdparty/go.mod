// A module of its own, as an adapter written outside esv2 would be: it sees
// only esv2's public packages (eventstore, eventstore/driver,
// eventstore/eventstoretest). The replace points at this checkout, so that
// the test in eventstore/eventstoretest (thirdparty_test.go) runs the suite
// of the tree it is part of.
module example.com/thirdparty

go 1.26.0

require github.com/esv2/esv2 v0.0.0-00010101000000-000000000000

require (
	github.com/google/go-cmp v0.7.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)

replace github.com/esv2/esv2 => ../../..
