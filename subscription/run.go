package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// run is the state of one Run: this member's leases and how far it got.
type run struct {
	s      *Subscription
	ttl    time.Duration
	n      int
	leases map[int]Lease // held partitions; Position is the committed one
	// validUntil bounds the leases by the local clock: taken before the
	// request that renewed them, it is never later than the database's.
	validUntil time.Time
	nextSync   time.Time
	// nearHead: the last read came back short, so the next one asks for
	// the head first (to advance past filtered-out events).
	nearHead   bool
	window     uint64 // a group member's read window, in positions (sizeWindow)
	headAt     time.Time
	lastCommit time.Time
	changed    func() <-chan struct{}
	// kept is how many of the leases held before the last acquire go on
	// under the same epoch.
	kept int
}

func (r *run) loop(ctx context.Context) error {
	s := r.s
	// A database error (a lost connection) is kept for Status and tried
	// again after a pause that doubles while the errors last.
	pause := s.o.errorBackoff
	backOff := func(err error) {
		s.log(ctx, slog.LevelWarn, "esv2: subscription database error, retrying",
			slog.Duration("pause", pause), slog.String("error", err.Error()))
		r.setErr(err)
		sleep(ctx, pause)
		pause = min(2*pause, s.o.maxErrorPause)
	}
	// Registering too, as Run's documentation says.
	for {
		err := r.register(ctx)
		if err == nil {
			break
		}
		if fatal(err) || ctx.Err() != nil {
			return err
		}
		if backOff(err); ctx.Err() != nil {
			return nil
		}
	}
	pause = s.o.errorBackoff
	if r.n > 1 {
		// Join first, take partitions a moment later: members started
		// together (a deployment, a scale-out) then see each other at
		// their first sync and take their shares at once. Otherwise
		// the first to sync takes every partition and hands most back
		// only at its next sync, a second later, while the others wait
		// (1.3 s of a group's 5.6 s over a 300,000-event backlog).
		if _, err := s.b.Heartbeat(ctx, s.name, s.o.member, r.ttl); err == nil {
			sleep(ctx, min(rebalancePoll, r.ttl/3))
		}
	}
	if c, ok := s.store.(changer); ok {
		changed, release := c.Changes(eventstore.AllStreams)
		defer release()
		r.changed = changed
	}
	for ctx.Err() == nil {
		if r.syncDue(time.Now()) {
			if err := r.sync(ctx); err != nil {
				if fatal(err) {
					return err
				}
				if errors.Is(err, eventstore.ErrNotFound) {
					// Deleted while running: create it again (from the
					// start the options give), holding nothing of the
					// deleted one.
					r.dropAll()
					if err = r.register(ctx); err == nil {
						continue
					}
					if fatal(err) {
						return err
					}
				}
				if len(r.leases) > 0 && !time.Now().Before(r.validUntil) {
					// Unrenewed, the leases have ended: another member
					// may hold the partitions now. Status says so rather
					// than show them live.
					r.dropAll()
					r.setState(Standby)
				}
				backOff(err)
				continue
			}
			if err := r.replayRequested(ctx); err != nil {
				switch {
				case fatal(err):
					return err
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, ErrLeaseLost):
					r.nextSync = time.Time{}
					continue
				}
				// Tried again at the next sync.
				s.log(ctx, slog.LevelWarn, "esv2: subscription could not replay parked events at a request",
					slog.String("error", err.Error()))
				r.setErr(err)
			}
		}
		if len(r.leases) == 0 {
			r.setState(Standby)
			sleep(ctx, time.Until(r.nextSync))
			continue
		}
		var ch <-chan struct{}
		if r.changed != nil {
			ch = r.changed()
		}
		progressed, err := r.step(ctx)
		switch {
		case err == nil:
			pause = s.o.errorBackoff
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLeaseLost):
			r.nextSync = time.Time{}
			continue
		case fatal(err):
			return err
		default:
			// The stored checkpoints decide where to resume: a commit that
			// failed may have gone through.
			r.nextSync = time.Time{}
			backOff(err)
			continue
		}
		if progressed {
			continue
		}
		r.setState(Live)
		if err := r.flushAdvance(ctx, false); err != nil && ctx.Err() == nil {
			switch {
			case errors.Is(err, ErrLeaseLost):
				// Reset, or taken over: look at the leases now rather
				// than hand over more at positions no longer ours.
				r.nextSync = time.Time{}
				continue
			case fatal(err):
				return err
			}
			r.setErr(err)
		}
		wait := min(s.o.poll, time.Until(r.nextSync))
		if r.pendingAdvance() {
			wait = min(wait, time.Until(r.lastCommit.Add(s.o.checkpointEvery)))
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return nil
}

// register creates the subscription or finds it, and learns its number of
// partitions.
func (r *run) register(ctx context.Context) error {
	s := r.s
	after, fromEnd := s.o.start.Cursor()
	if fromEnd {
		info, err := s.store.Info(ctx, eventstore.AllStreams)
		if err != nil {
			return err
		}
		after = info.Position
	}
	want := s.o.partitions
	if want == 0 {
		want = 1
	}
	n, err := s.b.Register(ctx, s.name, want, after)
	if err != nil {
		return err
	}
	if s.o.partitions != 0 && n != s.o.partitions {
		return &partitionsError{name: s.name, stored: n, asked: s.o.partitions}
	}
	r.n = n
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
	return nil
}

type partitionsError struct {
	name          string
	stored, asked int
}

func (e *partitionsError) Error() string {
	return fmt.Sprintf("subscription %q: stored with %d partitions, asked for %d", e.name, e.stored, e.asked)
}

func (e *partitionsError) Unwrap() error { return ErrPartitions }

// expiring reports whether the leases are too close to their end to start
// a batch: one must fit in the last third of a lease, before another
// member may take the partition.
func (r *run) expiring(now time.Time) bool {
	return len(r.leases) > 0 && r.validUntil.Sub(now) < r.ttl*2/3
}

// sync renews this member's place in the group and its leases: it counts
// the live members, takes its share of the partitions (p % members ==
// its index among them) and gives back the rest.
func (r *run) sync(ctx context.Context) error {
	s := r.s
	started := time.Now()
	members, err := s.b.Heartbeat(ctx, s.name, s.o.member, r.ttl)
	if err != nil {
		return err
	}
	idx := slices.Index(members, s.o.member)
	if idx < 0 {
		members, idx = []string{s.o.member}, 0
	}
	var want []int
	for p := idx; p < r.n; p += len(members) {
		want = append(want, p)
	}
	if r.givesUp(want) && time.Now().Before(r.validUntil) {
		// Write what was handled before handing partitions over, or
		// their next holder hands it over again. The leases are due for
		// renewal here (the sync period ends when they start expiring),
		// but still held: Commit checks the epochs, so a lease taken
		// meanwhile by another member only fails with ErrLeaseLost.
		if err := r.flushAdvance(ctx, true); err != nil && !errors.Is(err, ErrLeaseLost) {
			return err
		}
	}
	if err := r.acquire(ctx, want, started); err != nil {
		return err
	}
	if len(r.leases) < len(want) {
		// Part of this member's share is still held by others, who give
		// it up at their next sync (or lose it when their leases end):
		// look again soon, not a whole period later.
		r.nextSync = started.Add(min(r.syncEvery(), rebalancePoll))
	}
	return nil
}

// givesUp reports whether this member holds a partition not in want.
func (r *run) givesUp(want []int) bool {
	for p := range r.leases {
		if _, found := slices.BinarySearch(want, p); !found {
			return true
		}
	}
	return false
}

// syncEvery is how often a member renews its leases and looks at the
// group: a third of the lease TTL, and at least every second, so that a
// member that joins gets its share within about a second.
func (r *run) syncEvery() time.Duration { return min(r.ttl/3, maxSyncEvery) }

// renew extends the leases this member holds, and reports ErrLeaseLost if
// one of them was lost.
func (r *run) renew(ctx context.Context) error {
	s := r.s
	started := time.Now()
	if _, err := s.b.Heartbeat(ctx, s.name, s.o.member, r.ttl); err != nil {
		return err
	}
	had := len(r.leases)
	want := make([]int, 0, had)
	for p := range r.leases {
		want = append(want, p)
	}
	slices.Sort(want)
	next := r.nextSync
	if err := r.acquire(ctx, want, started); err != nil {
		return err
	}
	// A renewal is not a look at the group: keep that one due when it was.
	if next.Before(r.nextSync) {
		r.nextSync = next
	}
	if r.kept < had {
		// A partition was lost, or is held anew (a new epoch, or a
		// subscription deleted and created again): the batch under way
		// was read for the old one.
		return ErrLeaseLost
	}
	return nil
}

func (r *run) acquire(ctx context.Context, want []int, started time.Time) error {
	s := r.s
	leases, err := s.b.Acquire(ctx, s.name, s.o.member, want, r.ttl)
	if err != nil {
		// Nothing is known of the leases now: hold none until a sync
		// succeeds.
		r.dropAll()
		return err
	}
	next := make(map[int]Lease, len(leases))
	kept := 0
	s.mu.Lock()
	done := make(map[int]uint64, len(leases))
	for _, l := range leases {
		next[l.Partition] = l
		v := l.Position
		// The same lease goes on: what was handled under it holds. A
		// stored position below the one committed under the same epoch
		// is not the same lease but a subscription deleted and created
		// again, whose epochs start over.
		if old, ok := r.leases[l.Partition]; ok && old.Epoch == l.Epoch && l.Position >= old.Position {
			v = max(v, s.done[l.Partition])
			kept++
		}
		done[l.Partition] = v
	}
	s.done = done
	s.st.Partitions = s.st.Partitions[:0]
	for _, l := range leases {
		s.st.Partitions = append(s.st.Partitions, l.Partition)
	}
	s.updatePositionLocked()
	s.signalLocked()
	s.mu.Unlock()
	r.leases = next
	r.validUntil = started.Add(r.ttl)
	r.nextSync = started.Add(r.syncEvery())
	r.nearHead = false
	r.kept = kept
	return nil
}

func (r *run) dropAll() {
	r.leases = map[int]Lease{}
	s := r.s
	s.mu.Lock()
	s.done = nil
	s.st.Partitions = nil
	s.mu.Unlock()
}

// from is the position the next read begins after: the lowest handled.
func (r *run) from() uint64 {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	from := uint64(math.MaxUint64)
	for p := range r.leases {
		from = min(from, s.done[p])
	}
	return from
}

// step reads what follows the lowest handled position and hands this
// member's events of it to the handler, in batches. It reports whether it
// handed anything over, or stopped before the end for a sync (so the next
// step should follow at once); false means it read to the end of what was
// there.
//
// One Read runs while the handler works: a store holds no connection while
// a Read's loop body runs, and pages ahead where it can, so a subscription
// catching up reads as fast as one long Read does. (A Read per batch, or
// per page of a few batches, paid each Read's first page: planned anew on
// PostgreSQL, through database/sql's scan path on SQLite.)
func (r *run) step(ctx context.Context) (bool, error) {
	s := r.s
	from := r.from()
	// The head matters only to a filtered subscription: an unfiltered
	// read shows every position up to its last event, a filtered one
	// does not show those it skips, which only the head can vouch for
	// (see advance). Otherwise it is read now and then, for Status.
	var head uint64
	headKnown := false
	filter := r.filter()
	filtered := !filter.IsZero()
	partitioned := filter.Partitions.Count > 0
	if (filtered && r.nearHead) || partitioned || time.Since(r.headAt) > time.Second {
		info, err := s.store.Info(ctx, eventstore.AllStreams)
		if err != nil {
			return false, err
		}
		head, headKnown = info.Position, true
		r.headAt = time.Now()
		s.setHead(head, info.LastTime)
		if r.nearHead && head <= from {
			return false, nil
		}
	}
	// A member's read of its partitions goes through the others' events
	// in the database, yielding nothing meanwhile, so it reads a window
	// of positions at a time: one read of a long run of others' events
	// would otherwise outlast the lease, which is renewed between reads.
	// The window lies below the head, so every event in it has committed.
	var until uint64
	if r.window == 0 {
		r.window = minGroupWindow
	}
	if partitioned && head > from && head-from > r.window {
		until = from + r.window
	}
	began := time.Now()
	var handling time.Duration // of the step's time, the handler's
	last := from               // every position up to it was read
	progressed := false
	var batch []eventstore.Recorded
	read := 0
	for e, err := range s.store.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{
		From: eventstore.After(from), Until: until, Filter: filter,
	}) {
		if err != nil {
			return progressed, err
		}
		last = e.Position
		if r.isMine(e) {
			if batch == nil {
				// Sized once: grown from nothing, a batch of 100 cost
				// eight copies, a fifth of a catch-up's own CPU time.
				batch = make([]eventstore.Recorded, 0, s.o.batchSize)
			}
			batch = append(batch, e)
		}
		// The sync period also ends while the read goes through events
		// of other members' partitions with no batch to hand over: the
		// read stops then too, with what it gathered, or the lease runs
		// out under a member that is working. The clock is read every
		// syncCheckEvery events (time.Now on every one was a seventh of
		// the subscription's CPU time).
		read++
		if len(batch) < s.o.batchSize && (read%syncCheckEvery != 0 || !r.syncDue(time.Now())) {
			continue
		}
		if !progressed {
			progressed = true
			r.setState(CatchingUp)
		}
		if len(batch) == 0 {
			r.advance(last, eventstore.Recorded{}, 0)
			return true, nil
		}
		handleBegan := time.Now()
		if err := r.handle(ctx, batch, last); err != nil {
			return true, err
		}
		handling += time.Since(handleBegan)
		batch = nil // the handler may keep the last one
		if err := ctx.Err(); err != nil {
			return true, err
		}
		if r.syncDue(time.Now()) {
			// Time to renew and look at the group; the rest is read
			// again after the sync.
			return true, nil
		}
	}
	if until > 0 {
		// The window is read, and more of the log follows it. The next
		// one is sized so that reading it (the handler's time aside: the
		// sync is looked at between batches) takes about a quarter of
		// the sync period, whatever the database's scan rate.
		r.sizeWindow(time.Since(began) - handling)
		if !progressed {
			r.setState(CatchingUp)
		}
		if len(batch) == 0 {
			r.advance(until, eventstore.Recorded{}, 0)
			return true, nil
		}
		return true, r.handle(ctx, batch, until)
	}
	r.nearHead = true
	end := last
	if headKnown {
		// Every event up to head had committed when the read began, and
		// the read returned all of them that the filter keeps.
		end = max(end, head)
	}
	if len(batch) > 0 && s.o.maxWait > 0 {
		batch, end = r.fill(ctx, batch, end)
	}
	if len(batch) == 0 {
		r.advance(end, eventstore.Recorded{}, 0)
		return progressed, nil
	}
	return true, r.handle(ctx, batch, end)
}

// sizeWindow doubles the group member's read window after a read that
// took under an eighth of the sync period, and halves it after one that
// took over a quarter.
func (r *run) sizeWindow(took time.Duration) {
	target := r.syncEvery() / 4
	switch {
	case took < target/2:
		r.window = min(r.window*2, maxGroupWindow)
	case took > target:
		r.window = max(r.window/2, minGroupWindow)
	}
}

// syncDue reports whether it is time to renew the leases and look at the
// group.
func (r *run) syncDue(now time.Time) bool {
	return !now.Before(r.nextSync) || r.expiring(now)
}

// isMine reports whether e belongs to a partition this member holds and is
// past what it handled there. Only the run's goroutine writes s.done, so
// it reads it without the lock.
func (r *run) isMine(e eventstore.Recorded) bool {
	p := PartitionOf(e.StreamID, r.n)
	if _, ok := r.leases[p]; !ok {
		return false
	}
	return e.Position > r.s.done[p]
}

// read returns up to limit events of the subscription's filter past from.
func (r *run) read(ctx context.Context, from uint64, limit int) ([]eventstore.Recorded, error) {
	return eventstore.Collect(r.s.store.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{
		From: eventstore.After(from), Limit: limit, Filter: r.filter(),
	}))
}

// filter is the subscription's filter with, in a group, the partitions
// this member holds: a store that selects them in the database sends
// only this member's share of the log (a group's members each read all
// of it, and three were no faster than one: issue 11). The leases only
// shrink between syncs, which no read spans, so a read's events are a
// superset of what isMine keeps; isMine still decides.
func (r *run) filter() eventstore.Filter {
	f := r.s.o.filter
	if r.n <= 1 || len(r.leases) == 0 || len(r.leases) == r.n {
		return f
	}
	of := make([]int, 0, len(r.leases))
	for p := range r.leases {
		of = append(of, p)
	}
	slices.Sort(of)
	f.Partitions = eventstore.Partitions{Count: r.n, Of: of}
	return f
}

// fill waits up to the max wait for a live batch to fill.
func (r *run) fill(ctx context.Context, batch []eventstore.Recorded, end uint64) ([]eventstore.Recorded, uint64) {
	s := r.s
	// No later than the leases need renewing: the batch then starts with
	// the time left that expiring promises.
	deadline := time.Now().Add(s.o.maxWait)
	if renewAt := r.validUntil.Add(-r.ttl * 2 / 3); renewAt.Before(deadline) {
		deadline = renewAt
	}
	for len(batch) < s.o.batchSize {
		var ch <-chan struct{}
		if r.changed != nil {
			ch = r.changed()
		}
		events, err := r.read(ctx, end, s.o.batchSize-len(batch))
		if err != nil {
			return batch, end
		}
		if len(events) > 0 {
			end = events[len(events)-1].Position
			for _, e := range events {
				if r.isMine(e) {
					batch = append(batch, e)
				}
			}
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
	}
	return batch, end
}

// checkpoints returns the leases held, at position end.
func (r *run) checkpoints(end uint64) []Lease {
	return r.leasesAt(func(Lease) uint64 { return end })
}

// leasesAt returns the leases held, in partition order, each moved to
// at(lease) unless its committed position is past that.
func (r *run) leasesAt(at func(Lease) uint64) []Lease {
	cps := make([]Lease, 0, len(r.leases))
	for _, l := range r.leases {
		l.Position = max(l.Position, at(l))
		cps = append(cps, l)
	}
	slices.SortFunc(cps, func(a, b Lease) int { return a.Partition - b.Partition })
	return cps
}

// handle delivers a batch, retrying and applying the failure policy, and
// moves this member's partitions to end.
func (r *run) handle(ctx context.Context, batch []eventstore.Recorded, end uint64) error {
	s := r.s
	commit := s.txn || time.Since(r.lastCommit) >= s.o.checkpointEvery
	attempts, err := r.attempt(ctx, r.checkpoints(end), batch, commit)
	if err == nil {
		if commit {
			r.committed(end)
		}
		r.advance(end, batch[len(batch)-1], len(batch))
		return nil
	}
	var hf *handlerError
	if !errors.As(err, &hf) {
		return err
	}
	if s.o.policy != Park {
		return &HandlerError{Subscription: s.name, First: batch[0].Position, Last: batch[len(batch)-1].Position, Attempts: attempts, Err: hf.err}
	}
	// Find the events that fail on their own, and set them aside.
	for _, e := range batch {
		one := []eventstore.Recorded{e}
		attempts, err := r.attempt(ctx, r.checkpoints(e.Position), one, s.txn)
		if err == nil {
			if s.txn {
				r.committed(e.Position)
			}
			r.advance(e.Position, e, 1)
			continue
		}
		if !errors.As(err, &hf) {
			return err
		}
		text := hf.err.Error()
		if len(text) > maxErrorTextSize {
			text = text[:maxErrorTextSize]
		}
		if err := s.b.Park(ctx, s.name, Parked{
			Position: e.Position, StreamID: e.StreamID, Version: e.Version, Type: e.Type, EventID: e.ID,
			Error: text, Attempts: attempts, Time: time.Now().Truncate(eventstore.TimePrecision),
		}); err != nil {
			return err
		}
		if err := s.deliver(ctx, s.o.member, r.checkpoints(e.Position), nil, true); err != nil {
			return err
		}
		r.committed(e.Position)
		r.advance(e.Position, e, 0)
		s.count(func(st *Status) { st.Parked++ })
		s.log(ctx, slog.LevelWarn, "esv2: subscription parked an event",
			slog.Uint64("position", e.Position), slog.String("stream", e.StreamID), slog.Uint64("version", e.Version),
			slog.String("type", e.Type), slog.Int("attempts", attempts), slog.String("error", hf.err.Error()))
		if s.o.hooks.Parked != nil {
			s.o.hooks.Parked(ctx, s.name, e, hf.err)
		}
	}
	if err := s.deliver(ctx, s.o.member, r.checkpoints(end), nil, true); err != nil {
		return err
	}
	r.committed(end)
	r.advance(end, eventstore.Recorded{}, 0)
	return nil
}

// attempt delivers events with the retries of the options, renewing the
// leases when the pauses eat into them. It returns the number of attempts
// made.
func (r *run) attempt(ctx context.Context, cps []Lease, events []eventstore.Recorded, commit bool) (int, error) {
	s := r.s
	pause := s.o.backoff
	for i := 1; ; i++ {
		// Before every call, not only after a retry's pause: the Park
		// policy's one-by-one calls, or a batch that waited to fill, can
		// together outlast the lease even when each call is short, and the
		// next holder would then handle the same events at the same time.
		if r.expiring(time.Now()) {
			if err := r.renew(ctx); err != nil {
				return i - 1, err
			}
		}
		err := r.handOver(ctx, cps, events, commit, i)
		if err == nil {
			return i, nil
		}
		// Only the handler's own failures are tried again here. A backend
		// error may come from a COMMIT whose outcome is unknown: the loop
		// reads the stored checkpoints again before handing anything over,
		// so that a batch committed with its checkpoint is not applied
		// twice.
		var hf *handlerError
		if !errors.As(err, &hf) {
			r.nextSync = time.Time{}
			return i, err
		}
		if errors.Is(err, ErrLeaseLost) || ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) || i > s.o.retries {
			return i, err
		}
		s.count(func(st *Status) { st.Retries++ })
		s.log(ctx, slog.LevelDebug, "esv2: subscription handler failed, retrying",
			slog.Int("attempt", i), slog.Uint64("first", events[0].Position), slog.Uint64("last", events[len(events)-1].Position),
			slog.Duration("pause", pause), slog.String("error", hf.err.Error()))
		if !sleep(ctx, pause) {
			return i, ctx.Err()
		}
		pause = min(2*pause, s.o.maxBackoff)
	}
}

// committed records that the leases were written at end.
func (r *run) committed(end uint64) {
	for p, l := range r.leases {
		l.Position = max(l.Position, end)
		r.leases[p] = l
	}
	r.lastCommit = time.Now()
}

// advance records that this member handled its partitions up to end (last
// being the last event handed over, n the events delivered).
func (r *run) advance(end uint64, last eventstore.Recorded, n int) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range r.leases {
		s.done[p] = max(s.done[p], end)
	}
	s.st.Delivered += uint64(n)
	if !last.Time.IsZero() {
		s.st.LagTime = max(s.headTime.Sub(last.Time), 0)
	}
	if n > 0 {
		s.st.Err = nil
	}
	s.updatePositionLocked()
	s.signalLocked()
}

// pendingAdvance reports handled positions not yet written.
func (r *run) pendingAdvance() bool {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, l := range r.leases {
		if s.done[p] > l.Position {
			return true
		}
	}
	return false
}

// flushAdvance writes the checkpoints not written with a batch (events
// skipped by the filter or held by other members, and an at-least-once
// subscription's batches): at most once per checkpointEvery while live,
// and always on the way out (force).
func (r *run) flushAdvance(ctx context.Context, force bool) error {
	if !r.pendingAdvance() || (!force && time.Since(r.lastCommit) < r.s.o.checkpointEvery) {
		return nil
	}
	// Each partition at its own handled position: they differ while the
	// member catches up on a partition it just took, and one given up
	// must be written in full, or its next holder hands it over again.
	// (Only the run's goroutine writes s.done: no lock to read it.)
	s := r.s
	cps := r.leasesAt(func(l Lease) uint64 { return s.done[l.Partition] })
	if err := s.deliver(ctx, s.o.member, cps, nil, true); err != nil {
		return err
	}
	for _, l := range cps {
		r.leases[l.Partition] = l
	}
	r.lastCommit = time.Now()
	return nil
}

// leave writes the last checkpoints and releases the partitions.
func (r *run) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if len(r.leases) > 0 && time.Now().Before(r.validUntil) {
		_ = r.flushAdvance(ctx, true) // best effort: the partitions are replayed from the last checkpoint otherwise
	}
	if r.n > 0 {
		_ = r.s.b.Leave(ctx, r.s.name, r.s.o.member) // best effort: the leases run out otherwise
	}
}

func (r *run) setState(st State) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State != st {
		s.st.State = st
		if st == Live {
			s.st.LagTime = 0
		}
		s.signalLocked()
	}
}

func (r *run) setErr(err error) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Err = err
}
