// Package watch is the watch machinery of the front (package
// eventstore/driver): the Notifiers of one store kept in a Hub (one for
// AllStreams, one per watched stream), Follow, which turns a page function
// and a Notifier into a watch's iterator (catch-up, then live), HeadBounded
// for filtered watches, and PageFull, which tells a page cut short by its
// row or byte budget from the end of what is visible. The in-module
// reference store of the conformance suite uses it too.
package watch
