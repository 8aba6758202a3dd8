package eventstore

// PageBytes is the byte budget of one page of events: every page a store
// reads (a Read's pages, the pages it reads ahead where it does, a watch's
// catch-up and live pages, filtered or not) ends at its row limit or as soon as its
// events' sizes ([EventSize]) add up to PageBytes, whichever comes first,
// and holds at least one event, so that an event larger than the budget is
// still delivered. A page therefore holds at most PageBytes plus one event.
//
// Pages sized in rows alone held up to 4,096 events: reading 1,200 events
// of 1 MiB each peaked at 922 MB (issue 9 item 3). With 4 MiB, a reader
// holds the page it yields and at most two pages read ahead, about 15 MiB
// of events at 1 MiB each, and stays well within 64 MB of its baseline
// even with the garbage collector's headroom (GOGC=100 lets the heap reach
// twice what is live). Small events never reach it: 4,096 events of 1 KiB
// are 4 MiB, so read throughput is unchanged.
const PageBytes = 4 << 20

// EventSize is the size of an event as a store counts it: the bytes of its
// Data plus those of its metadata's keys and values. It is the size that a
// store's maximum event size limits (see [DefaultMaxEventSize]) and that
// [PageBytes] budgets.
func EventSize(e Event) int {
	if len(e.Metadata) == 0 {
		return len(e.Data) // inlined: adapters call it for every row they read
	}
	return len(e.Data) + metadataSize(e.Metadata)
}

func metadataSize(md map[string]string) int {
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	return n
}
