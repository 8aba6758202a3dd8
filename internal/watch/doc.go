// Package watch is the watch machinery of the front (package
// eventstore/driver): the Notifiers of one store kept in a Hub (one for
// AllStreams, one per watched stream), Follow, which turns a page function
// and a Notifier into a watch's iterator (catch-up, then live), HeadBounded
// for filtered watches, and PageFull, which tells a page cut short by its
// row or byte budget from the end of what is visible. The in-module
// reference store of the conformance suite uses it too.
//
// Watchers at the head share reads: each Hub entry has a Tail, which
// reads each change once and hands the page to every watcher waiting
// there (FollowTail, Match for filters applied in memory); watchers
// catching up, or fallen behind the Tail's bounded window, read alone.
package watch
