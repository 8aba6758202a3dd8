package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// CommandMetadataKey is the metadata key under which Save and Update store
// the digest of the command ID given with [WithCommandID] ([CommandDigest]),
// on every event of the command; the ID itself is never stored.
const CommandMetadataKey = "esv2.command"

// Defaults of Config.
const (
	DefaultMaxAttempts = 10
	DefaultRetryDelay  = time.Millisecond
)

// Config describes an aggregate type to [NewRepository].
type Config[S, E any] struct {
	// Evolve folds one event into the state and returns the new state. It
	// must be pure: Load, Record and snapshots all rely on folding the
	// same events giving the same state. Required.
	Evolve func(S, E) S
	// Codec names and encodes the events. Required.
	Codec *codec.Registry[E]
	// Init returns the state of an aggregate without events. Nil means the
	// zero S.
	Init func(id string) S

	// SnapshotEvery makes Save store a snapshot of the state whenever the
	// stream's version crosses a multiple of it (a Save from version 98 to
	// 103 with SnapshotEvery 100 snapshots at 103). 0 (the default) turns
	// automatic snapshots off.
	SnapshotEvery uint64
	// SnapshotSchema tags the snapshots written, and Load uses only
	// snapshots with this tag: change it whenever S changes shape, and old
	// snapshots are ignored (the state is rebuilt from events) instead of
	// decoded into the wrong shape. Required when SnapshotEvery is set;
	// when empty, Load ignores snapshots.
	SnapshotSchema string
	// SnapshotName is the name the snapshots are kept under; empty means
	// eventstore.DefaultSnapshotName.
	SnapshotName string
	// SnapshotEncoding encodes S in snapshots; nil means the Codec's
	// encoding. S is encoded as a whole, so its fields must be exported
	// (or have types that marshal themselves): NewRepository checks it.
	SnapshotEncoding codec.Encoding
	// OnSnapshotError, when set, is told about every snapshot that could
	// not be used or written (a *SnapshotError). Neither fails the Load or
	// Save that met it.
	OnSnapshotError func(ctx context.Context, streamID string, err error)
	// Logger, when set, logs the same snapshot problems at level Warn,
	// Update's conflicts that it retries at Debug and an Update that gives
	// up at Warn. Nil logs nothing. Give the store (its adapter's
	// WithLogger) and subscriptions (subscription.WithLogger) the same
	// logger for one consistent log.
	Logger *slog.Logger

	// Hooks lets instrumentation see Load, Save and Update (package
	// esotel traces and measures them). The zero value costs nothing.
	Hooks Hooks

	// MaxAttempts bounds how many times Update loads, decides and saves
	// when saving meets a concurrency conflict. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// RetryDelay is the smallest unit of the random pause between two
	// attempts of Update. After failed attempt n, Update waits a random
	// time up to 2^(n-1) units (capped at 32), a unit being the time the
	// failed attempt took or RetryDelay, whichever is longer. 0 means
	// DefaultRetryDelay; a negative value retries at once. An Update that
	// holds the stream's cross-process lock retries at once (see Update).
	RetryDelay time.Duration

	// CommandKey is the secret HMAC key of the command IDs given with
	// [WithCommandID]: the store keeps their digests, never the IDs
	// (see [CommandDigest]). Nil means [DefaultCommandKey], which is
	// public: set a key of 32 random bytes, kept as other secrets are,
	// when command IDs can be guessed. Do not change it while retries
	// of commands stored under the old key may still come: they would
	// not be recognised (see WithCommandID). It must not be modified
	// after NewRepository.
	CommandKey []byte
}

// Repository loads and saves the aggregates of one type, kept as event
// streams of an [eventstore.Store]. Make one with [NewRepository]; it is
// safe for concurrent use.
type Repository[S, E any] struct {
	store    eventstore.Store
	cfg      Config[S, E]
	snapEnc  codec.Encoding
	snapName string
	updates  streamLocks // one Update at a time per aggregate
	// locker is the store's cross-process stream lock, nil when the store
	// has none; noLocker is set once the store said it cannot lock
	// (errors.ErrUnsupported), so that Updates stop asking.
	locker   eventstore.StreamLocker
	noLocker atomic.Bool
}

// NewRepository returns a repository of the aggregates described by cfg,
// stored in store. It returns an error wrapping [ErrInvalidConfig] when cfg
// lacks Evolve or Codec, or sets SnapshotEvery without SnapshotSchema.
//
// With snapshots on (SnapshotSchema set), it also refuses a state type S
// that the snapshot encoding cannot give back as it was: one with an
// unexported field, for example, would load from a snapshot with that
// field zero. The error then also wraps a [*codec.StateError] naming the
// field (errors.Is(err, codec.ErrState)); see [codec.CheckState] for the
// rules. Export the field, or give its type a custom marshaler.
func NewRepository[S, E any](store eventstore.Store, cfg Config[S, E]) (*Repository[S, E], error) {
	var problems []error
	if store == nil {
		problems = append(problems, fmt.Errorf("%w: nil store", ErrInvalidConfig))
	}
	if cfg.Evolve == nil {
		problems = append(problems, fmt.Errorf("%w: Evolve is required", ErrInvalidConfig))
	}
	if cfg.Codec == nil {
		problems = append(problems, fmt.Errorf("%w: Codec is required", ErrInvalidConfig))
	}
	if cfg.SnapshotEvery > 0 && cfg.SnapshotSchema == "" {
		problems = append(problems, fmt.Errorf("%w: SnapshotEvery needs a SnapshotSchema", ErrInvalidConfig))
	}
	if cfg.MaxAttempts < 0 {
		problems = append(problems, fmt.Errorf("%w: MaxAttempts %d is negative", ErrInvalidConfig, cfg.MaxAttempts))
	}
	if cfg.SnapshotSchema != "" || cfg.SnapshotName != "" {
		// Checked here so that Load's snapshot requests cannot fail as
		// invalid input, which Load returns rather than reports.
		if err := validate.Snapshot(eventstore.Snapshot{StreamID: "-", Name: cfg.SnapshotName, Schema: cfg.SnapshotSchema}, 0); err != nil {
			problems = append(problems, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	r := &Repository[S, E]{store: store, cfg: cfg, snapEnc: cfg.SnapshotEncoding, snapName: cfg.SnapshotName}
	r.locker, _ = store.(eventstore.StreamLocker)
	if r.snapEnc == nil {
		r.snapEnc = cfg.Codec.Encoding()
	}
	if cfg.SnapshotSchema != "" {
		// A state the snapshot encoding cannot restore (an unexported
		// field, say) would load from a snapshot as another state than
		// the events give, and nothing would report it (issue 9 item 8).
		if err := codec.CheckState(r.snapEnc, initSamples(cfg.Init)...); err != nil {
			return nil, fmt.Errorf("%w: snapshots are on (SnapshotSchema %q) but %w", ErrInvalidConfig, cfg.SnapshotSchema, err)
		}
	}
	if r.snapName == "" {
		r.snapName = eventstore.DefaultSnapshotName
	}
	return r, nil
}

// initSamples returns Init's state for a made-up ID, for CheckState's round
// trip; none when there is no Init or it panics on that ID (it may expect
// IDs of a form of its own).
func initSamples[S any](init func(string) S) (samples []S) {
	if init == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			samples = nil
		}
	}()
	return []S{init("esv2-snapshot-check")}
}

// CallOption modifies one Save or Update. (Repository-wide settings are
// fields of [Config].)
type CallOption func(*callOptions)

type callOptions struct {
	commandID string
	metadata  map[string]string
	mustExist bool
}

// WithCommandID makes a Save or Update idempotent: running it again with
// the same command ID (a client's retry after a timeout, a redelivered
// message) stores nothing more and still succeeds. Each event of the
// command gets an event ID derived from the stream, the command ID and the
// event's index, so the store's idempotency rule turns a repeat into a
// no-op; a digest of the command ID (never the ID: it may be personal
// data) is also kept in the events' metadata under [CommandMetadataKey],
// for readers ([CommandDigest]), and is their cause
// ([eventstore.CausationIDKey]); their correlation ID
// ([eventstore.CorrelationIDKey]) is the context's (see
// [eventstore.WithCorrelationID]), or the digest when the context has
// none, as the first command of a chain. Metadata given with [WithMetadata]
// wins over all three. One command ID stands for one batch of
// events per stream: reuse it on another stream freely (a transfer's two
// legs), but not for a second batch on the same stream.
//
// A command is "already applied" when the stream holds the event ID derived
// for its first event; asking costs one indexed look-up, never a read of
// the stream. Update decides first and appends: a repeat whose events are
// all stored already is a no-op that succeeds, with the aggregate reloaded
// from the stream. When decide fails on a repeat (a retried withdrawal now
// looks like insufficient funds), Update looks the command up and succeeds
// if it was applied.
//
// A repeat may decide other events than the first time (the state has moved
// on). Fewer or different events of the same count store nothing: the
// stored ones stand. More events than were stored would have the store keep
// the old ones and append the extra ones, half-applying the command twice;
// so before appending a batch of two or more events, Save and Update look
// the command up, and store nothing if it was applied. Batches of one
// event need no look-up. Either way, what a repeat returns is the stream as
// stored, not what decide returned the second time.
//
// The look-up is [eventstore.Store.FindEvent] of the command's first event
// ID: one indexed read, nothing appended, so a Store wrapper (logging,
// metrics, an outbox) sees a look-up, not a refused append. A store that
// cannot look events up (errors.ErrUnsupported) fails such a Save or
// Update with that error.
func WithCommandID(id string) CallOption { return func(o *callOptions) { o.commandID = id } }

// WithMetadata adds metadata (user, tenant ...) to every event saved. The
// map is not modified. Metadata of the context ([eventstore.WithMetadata],
// [eventstore.WithCorrelationID]) is added too, by the store; these keys
// win over the context's.
func WithMetadata(md map[string]string) CallOption { return func(o *callOptions) { o.metadata = md } }

// MustExist makes an Update of an aggregate whose stream has no events fail
// with an error satisfying errors.Is(err, [ErrNotFound]) (and so
// errors.Is(err, eventstore.ErrNotFound)), without calling decide: a
// command addressed to something that was never created, which an HTTP
// handler answers with 404. Save ignores it.
func MustExist() CallOption { return func(o *callOptions) { o.mustExist = true } }

func collect(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Load returns the aggregate stored under id: the newest usable snapshot
// (if snapshots are configured) folded forward with the events after it,
// which are streamed from the store, never read into memory at once. A
// stream without events gives the initial state at version 0.
//
// A snapshot with another schema tag, one that does not decode, or one
// past the stream's last event is ignored (the state is rebuilt from the
// first event) and reported as a [*SnapshotError]. An invalid id fails
// the Load with a *eventstore.ValidationError, and is not reported. An
// event that does not decode fails the Load with a [*codec.DecodeError];
// store errors are returned wrapped.
func (r *Repository[S, E]) Load(ctx context.Context, id string) (*Aggregate[S, E], error) {
	ctx, done := r.call(ctx, "load", id, "")
	a, err := r.loadNew(ctx, id)
	done(result(a, 0, 1, false, err))
	return a, err
}

// loadNew loads the aggregate id, unhooked.
func (r *Repository[S, E]) loadNew(ctx context.Context, id string) (*Aggregate[S, E], error) {
	a := &Aggregate[S, E]{id: id, evolve: r.cfg.Evolve}
	if err := r.load(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadExisting is [Repository.Load] for an aggregate that must exist: when
// its stream has no events it returns an error satisfying
// errors.Is(err, [ErrNotFound]) (and errors.Is(err, eventstore.ErrNotFound))
// instead of the initial state at version 0; so does a deleted stream,
// which has no events either. Its other errors are Load's.
func (r *Repository[S, E]) LoadExisting(ctx context.Context, id string) (*Aggregate[S, E], error) {
	ctx, done := r.call(ctx, "load", id, "")
	a, err := r.loadNew(ctx, id)
	if err == nil && a.version == 0 {
		a, err = nil, fmt.Errorf("aggregate: load %q: %w", id, ErrNotFound)
	}
	done(result(a, 0, 1, false, err))
	return a, err
}

// load (re)fills a from the store, dropping anything pending.
func (r *Repository[S, E]) load(ctx context.Context, a *Aggregate[S, E]) error {
	// A nil ctx would panic in loadSnapshot's ctx.Err(); refuse it first.
	if err := validate.Context(ctx); err != nil {
		return fmt.Errorf("aggregate: load %q: %w", a.id, err)
	}
	// An invalid ID is the caller's error, not a snapshot problem: check
	// it before the snapshot is asked for, whose refusal would otherwise
	// be reported as "snapshot ignored" (issue 9 item 8).
	if err := validate.StreamID(a.id); err != nil {
		return fmt.Errorf("aggregate: load %q: %w", a.id, err)
	}
	if a.id == eventstore.AllStreams {
		return fmt.Errorf("aggregate: load %q: %w", a.id, &eventstore.ValidationError{
			Field: "stream ID", Index: -1, Reason: "the all-streams log is not an aggregate"})
	}
	a.pending = a.pending[:0]
	r.reset(a)
	if r.cfg.SnapshotSchema != "" {
		snap, err := r.loadSnapshot(ctx, a)
		if err != nil {
			return err
		}
		if a.snapshot > 0 {
			// The repository snapshots every SnapshotEvery events, so the
			// stream rarely holds more after the snapshot: asking for
			// that many (and the snapshot's own event) reads them in one
			// page, where a read of unknown length starts with a small
			// one and grows (one round trip less on PostgreSQL). A
			// longer tail is read on by the fold below.
			limit := 0
			if n := r.cfg.SnapshotEvery; n > 0 && n < math.MaxInt32 {
				limit = int(n) + 1
			}
			ahead, full, err := r.fold(ctx, a, a.snapshot, limit)
			switch {
			case err != nil:
				return err
			case full:
				return r.foldRest(ctx, a)
			case !ahead:
				return nil
			}
			// The stream ends before the snapshot's version: written
			// before stores refused such snapshots, or by hand. Trusting
			// it would make every later save conflict (issue 9 item 7).
			r.report(ctx, &SnapshotError{Op: "load", StreamID: a.id, Version: snap.Version, Schema: snap.Schema,
				Err: fmt.Errorf("%w: the stream's events end before version %d", ErrSnapshotAhead, snap.Version)})
			r.reset(a)
		}
	}
	return r.foldRest(ctx, a)
}

// foldRest folds the stream's events after a.version into a.
func (r *Repository[S, E]) foldRest(ctx context.Context, a *Aggregate[S, E]) error {
	_, _, err := r.fold(ctx, a, 0, 0)
	return err
}

// reset puts a at the initial state of its stream, before any event.
func (r *Repository[S, E]) reset(a *Aggregate[S, E]) {
	a.snapshot = 0
	a.version = 0
	a.position = 0
	if r.cfg.Init != nil {
		a.state = r.cfg.Init(a.id)
	} else {
		var zero S
		a.state = zero
	}
}

// fold folds the stream's events after a.version into a. With check > 0
// (a.version is then a snapshot's version, check) it reads from the
// snapshot's own event, which it does not fold, to learn in the same read
// whether the stream reaches the snapshot at all; ahead reports that it
// does not, and a is then left half-folded for the caller to reset. A
// limit > 0 caps the events read; full reports that it read that many,
// and the caller folds on from a.version.
func (r *Repository[S, E]) fold(ctx context.Context, a *Aggregate[S, E], check uint64, limit int) (ahead, full bool, err error) {
	evolve := r.cfg.Evolve
	reg := r.cfg.Codec
	after := a.version
	if check > 0 {
		after = check - 1
	}
	first, n := true, 0
	// Folding uses each event's type, data, version and position, never
	// its ID, metadata or time: the store need not read them.
	opts := eventstore.ReadOptions{From: eventstore.After(after), Omit: eventstore.AllFields, Limit: limit}
	for rec, err := range r.store.Read(ctx, a.id, opts) {
		n++
		if err != nil {
			return false, false, fmt.Errorf("aggregate: load %q: %w", a.id, err)
		}
		if first {
			first = false
			if check > 0 && rec.Version == check {
				continue
			}
			// The first event read must follow a's version: a gap means
			// a truncation removed events the state needs (issue 12).
			// (With a snapshot, a.version is check: its own event may
			// have been removed, the next one may not.)
			if want := a.version + 1; rec.Version > want {
				return false, false, fmt.Errorf("aggregate: load %q: %w", a.id,
					&eventstore.TruncatedError{StreamID: a.id, Need: want, First: rec.Version})
			}
		}
		e, err := reg.DecodeRecordedContext(ctx, &rec)
		if err != nil {
			return false, false, fmt.Errorf("aggregate: load %q: %w", a.id, err)
		}
		a.state = evolve(a.state, e)
		a.version = rec.Version
		a.position = rec.Position
	}
	// Nothing read: a new stream, or a deleted one (whose appends are
	// refused: Save says so), or one that ends before the snapshot. A
	// truncation always keeps the last event, so a truncated stream is
	// never read empty: its gap shows in the first event read, above.
	return first && check > 0, limit > 0 && n == limit, nil
}

// loadSnapshot starts a from its stream's snapshot when there is a usable
// one, and returns it. Only a context error, ErrClosed or invalid input
// (the caller's, not the snapshot's) is returned: other problems are
// reported and leave a at the initial state.
func (r *Repository[S, E]) loadSnapshot(ctx context.Context, a *Aggregate[S, E]) (eventstore.Snapshot, error) {
	snap, err := r.store.LoadSnapshot(ctx, a.id, r.snapName)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		return snap, nil
	case err != nil:
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) || errors.Is(err, eventstore.ErrInvalidInput) {
			return snap, fmt.Errorf("aggregate: load %q: %w", a.id, err)
		}
		r.report(ctx, &SnapshotError{Op: "load", StreamID: a.id, Err: err})
		return snap, nil
	case snap.Schema != r.cfg.SnapshotSchema:
		r.report(ctx, &SnapshotError{Op: "load", StreamID: a.id, Version: snap.Version, Schema: snap.Schema,
			Err: fmt.Errorf("%w: want %q", ErrSnapshotSchema, r.cfg.SnapshotSchema)})
		return snap, nil
	}
	state, err := codec.DecodeStateContext[S](ctx, r.snapEnc, snap.Data)
	if err != nil {
		r.report(ctx, &SnapshotError{Op: "load", StreamID: a.id, Version: snap.Version, Schema: snap.Schema, Err: err})
		return snap, nil //nolint:nilerr // a snapshot that does not decode is reported, then ignored (see above)
	}
	a.state, a.version, a.snapshot = state, snap.Version, snap.Version
	return snap, nil
}

// log tells the logger, if any, of an Update's conflict.
func (r *Repository[S, E]) log(ctx context.Context, level slog.Level, msg, id string, attempt int, err error) {
	if r.cfg.Logger == nil {
		return
	}
	r.cfg.Logger.LogAttrs(ctx, level, msg, slog.String("stream", id), slog.Int("attempt", attempt),
		slog.Int("max_attempts", r.cfg.MaxAttempts), slog.String("error", err.Error()))
}

func (r *Repository[S, E]) report(ctx context.Context, err *SnapshotError) {
	if r.cfg.OnSnapshotError != nil {
		r.cfg.OnSnapshotError(ctx, err.StreamID, err)
	}
	if r.cfg.Logger != nil {
		msg := "esv2: snapshot ignored, state rebuilt from events"
		if err.Op == "save" {
			msg = "esv2: snapshot not saved"
		}
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, msg,
			slog.String("op", err.Op), slog.String("stream", err.StreamID),
			slog.Uint64("version", err.Version), slog.String("schema", err.Schema),
			slog.String("error", err.Err.Error()))
	}
}

// Save appends the aggregate's pending events with the loaded version as
// the expected version, then (when configured) snapshots the state if the
// stream's version crossed a multiple of SnapshotEvery. Saving nothing
// pending does nothing.
//
// If another writer appended to the stream since Load, Save writes nothing
// and returns an error wrapping a *eventstore.ConflictError
// (errors.Is(err, eventstore.ErrConcurrency)); the aggregate is then stale
// and must be loaded again (or use [Repository.Update], which does that).
// A snapshot that fails to save does not fail the Save; it is reported.
//
// With [WithCommandID], a Save whose events were already stored succeeds
// without storing them again, and reloads the aggregate so that its state
// and version are the stream's.
//
// After a Save that stored events (or found them stored), [Aggregate.Position]
// is their global position: wait for a subscription to reach it to read
// your own write.
func (r *Repository[S, E]) Save(ctx context.Context, a *Aggregate[S, E], opts ...CallOption) error {
	o := collect(opts)
	if r.cfg.Hooks.Call == nil {
		return r.save(ctx, a, o)
	}
	ctx, done := r.call(ctx, "save", a.id, o.commandID)
	n := len(a.pending)
	err := r.save(ctx, a, o)
	done(result(a, n, 1, false, err))
	return err
}

func (r *Repository[S, E]) save(ctx context.Context, a *Aggregate[S, E], o callOptions) error {
	if len(a.pending) == 0 {
		return nil
	}
	md, idBase := o.metadata, ""
	if o.commandID != "" {
		md = make(map[string]string, len(o.metadata)+3)
		for k, v := range o.metadata {
			md[k] = v
		}
		digest := r.commandDigest(o.commandID)
		md[CommandMetadataKey] = digest
		// The command caused these events; the conversation it belongs
		// to is the context's (the store adds it), or starts here. Both
		// name the command by its digest, as CommandMetadataKey does.
		if _, ok := md[eventstore.CausationIDKey]; !ok {
			md[eventstore.CausationIDKey] = digest
		}
		if _, ok := md[eventstore.CorrelationIDKey]; !ok && eventstore.MetadataFrom(ctx)[eventstore.CorrelationIDKey] == "" {
			md[eventstore.CorrelationIDKey] = digest
		}
		idBase = r.commandIDBase(a.id, o.commandID)
	}
	events := make([]eventstore.Event, len(a.pending))
	for i, e := range a.pending {
		ev, err := r.cfg.Codec.EventContext(ctx, e)
		if err != nil {
			return fmt.Errorf("aggregate: save %q: event %d: %w", a.id, i, err)
		}
		ev.Metadata = md
		if idBase != "" {
			ev.ID = idBase + strconv.Itoa(i)
		}
		events[i] = ev
	}
	if idBase != "" && len(events) > 1 {
		// Were the command's events stored with fewer events than now,
		// this batch would be half duplicates, and the store would append
		// the other half: look first (see WithCommandID).
		done, err := r.stored(ctx, a.id, idBase)
		if err != nil {
			return fmt.Errorf("aggregate: save %q: look up command %q: %w", a.id, o.commandID, err)
		}
		if done {
			return r.reload(ctx, a, 0)
		}
	}
	res, err := r.store.Append(ctx, a.id, eventstore.Exact(a.version), events...)
	if err != nil {
		return fmt.Errorf("aggregate: save %q: %w", a.id, err)
	}
	if len(res.Duplicates) > 0 || res.Version != a.version+uint64(len(events)) {
		// A repeated command: what the stream holds is not (only) what
		// this aggregate recorded, so take the stream's word for it.
		return r.reload(ctx, a, res.Position)
	}
	before := a.version
	a.version = res.Version
	a.position = res.Position
	a.pending = a.pending[:0]
	if n := r.cfg.SnapshotEvery; n > 0 && a.version/n > before/n {
		r.saveSnapshot(ctx, a)
	}
	return nil
}

// reload refills a after a save found its command already stored, at
// position pos when the append reported it (0 when not known).
func (r *Repository[S, E]) reload(ctx context.Context, a *Aggregate[S, E], pos uint64) error {
	if err := r.loadStored(ctx, a, pos); err != nil {
		return fmt.Errorf("aggregate: save %q: events stored, reload failed: %w", a.id, err)
	}
	return nil
}

// loadStored loads a, whose command was found stored, and sets its
// Position: pos, or else the position of the stream's last event, which is
// at or past the command's (asked for only when the state came from a
// snapshot with no event after it).
func (r *Repository[S, E]) loadStored(ctx context.Context, a *Aggregate[S, E], pos uint64) error {
	if err := r.load(ctx, a); err != nil {
		return err
	}
	if pos > 0 {
		a.position = pos
		return nil
	}
	if a.position == 0 {
		info, err := r.store.Info(ctx, a.id)
		if err != nil {
			return fmt.Errorf("aggregate: load %q: %w", a.id, err)
		}
		a.position = info.Position
	}
	return nil
}

// stored reports whether the stream holds the first event of the command
// whose event IDs start with idBase: one look-up of that event ID, which
// the store keeps with a unique index. The stream is not read.
func (r *Repository[S, E]) stored(ctx context.Context, streamID, idBase string) (bool, error) {
	e, err := r.store.FindEvent(ctx, idBase+"0")
	switch {
	case err == nil:
		// The ID embeds a hash of the stream ID, so an event found in
		// another stream was not written by this command; say so rather
		// than take it for this stream's.
		if e.StreamID != streamID {
			return false, fmt.Errorf("event ID %q is stored in stream %q: %w", idBase+"0", e.StreamID, eventstore.ErrIdempotency)
		}
		return true, nil
	case errors.Is(err, eventstore.ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

func (r *Repository[S, E]) saveSnapshot(ctx context.Context, a *Aggregate[S, E]) {
	data, err := codec.EncodeStateContext(ctx, r.snapEnc, a.state)
	if err == nil {
		err = r.store.SaveSnapshot(ctx, eventstore.Snapshot{
			StreamID: a.id, Name: r.snapName, Version: a.version, Schema: r.cfg.SnapshotSchema, Data: data,
		})
	}
	if err != nil {
		r.report(ctx, &SnapshotError{Op: "save", StreamID: a.id, Version: a.version, Schema: r.cfg.SnapshotSchema, Err: err})
	}
}

// Update runs a command against the aggregate id: it loads it, calls decide
// with its state, records the events decide returns and saves them.
//
// Updates of one aggregate through one Repository run one at a time (a
// waiting Update's ctx ends its wait), so the goroutines of a process
// never make each other's saves conflict: each command is decided on the
// state the one before it saved. Conflicts come only from other processes
// or Repositories writing the stream. When the save meets a concurrency
// conflict it starts again from the load, up to Config.MaxAttempts times,
// so decide always judges the latest state and must be free of side
// effects. It returns the aggregate as saved.
//
// # Turns across processes
//
// Over a store that can lock streams across processes
// ([eventstore.StreamLocker]: PostgreSQL), Updates of a contended
// aggregate also take turns with other processes. An Update tries first
// without the lock (one look says whether another holds or awaits it; if
// so, it waits for the lock instead), so an aggregate that only this
// process writes costs nothing more. After a conflict it holds the lock
// for its remaining attempts, and for a while (a second after the last
// conflict or sighting of the lock) every Update of the aggregate through
// this Repository takes the lock from its first attempt. An Update
// holding the lock can lose only to writers that were saving without it
// when it took it: at most one per other Repository, since each of their
// next Updates sees the lock held and waits. So with two processes an
// Update meets at most two conflicts (its first attempt, and one under
// the lock) and never gives up with 3 attempts or more; writers that do
// not take the lock (plain Appends, stores without the ability) still
// race as before. The lock is advisory and only spares attempts: expected
// versions still decide every save, so a lock lost with its database
// session costs a conflict at worst, never a lost or doubled event.
// Without the lock, a conflict is followed by a short random pause that
// grows with each attempt, so that rivals spread out.
//
// An error from decide is returned at once, wrapped (errors.Is and
// errors.As see it), and nothing is saved. Deciding no events saves
// nothing. After the last attempt the conflict is returned, marked
// [ErrGaveUp] (errors.Is(err, ErrGaveUp) and errors.Is(err,
// eventstore.ErrConcurrency) both hold). Only conflicts are
// retried: an eventstore.ErrUnknownOutcome (the connection was lost while
// the save committed, and the store could not find out whether it did) is
// returned as it is, since running the command again could apply it
// twice; with [WithCommandID] calling Update again is safe.
//
// With [WithCommandID], an Update whose command is already stored in the
// stream stores nothing and returns the aggregate as stored, even when
// deciding again now fails: decide is called first, and the command is
// looked up only when decide fails or returns two or more events (see
// [WithCommandID]); a repeat deciding one event is recognised by the
// append itself.
//
// The aggregate returned has [Aggregate.Position] set to the global position
// of the events stored (or found stored, for a repeated command): wait for a
// subscription to reach it to read your own write. With [MustExist], an
// Update of an aggregate without events fails with [ErrNotFound].
func (r *Repository[S, E]) Update(ctx context.Context, id string, decide func(S) ([]E, error), opts ...CallOption) (*Aggregate[S, E], error) {
	o := collect(opts)
	if r.cfg.Hooks.Call == nil {
		a, _, err := r.update(ctx, id, decide, o, nil)
		return a, err
	}
	ctx, done := r.call(ctx, "update", id, o.commandID)
	var events int
	a, attempts, err := r.update(ctx, id, decide, o, &events)
	done(result(a, events, attempts, errors.Is(err, ErrGaveUp), err))
	return a, err
}

// update is Update, unhooked: it returns the number of attempts made, and
// counts the events saved into events when not nil.
func (r *Repository[S, E]) update(ctx context.Context, id string, decide func(S) ([]E, error), o callOptions, saved *int) (*Aggregate[S, E], int, error) {
	if err := validate.Context(ctx); err != nil {
		return nil, 0, fmt.Errorf("aggregate: update %q: %w", id, err)
	}
	unlock, err := r.updates.lock(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("aggregate: update %q: %w", id, err)
	}
	defer unlock()
	// held releases the cross-process lock of the stream, when this
	// Update holds it (see Update).
	var held func(context.Context) error
	defer func() {
		if held != nil {
			r.unlockStream(ctx, id, held)
		}
	}()
	if held, err = r.firstLock(ctx, id); err != nil {
		return nil, 0, fmt.Errorf("aggregate: update %q: %w", id, err)
	}
	start := time.Now()
	a, err := r.Load(ctx, id)
	if err != nil {
		return nil, 1, err
	}
	if o.mustExist && a.version == 0 {
		return nil, 1, fmt.Errorf("aggregate: update %q: %w", id, ErrNotFound)
	}
	for attempt := 1; ; attempt++ {
		events, err := decide(a.state)
		if err != nil {
			if o.commandID == "" {
				return nil, attempt, fmt.Errorf("aggregate: update %q: %w", id, err)
			}
			// A repeat may fail to decide again (a retried withdrawal
			// now finds too little money): then it is a success.
			done, lerr := r.stored(ctx, id, r.commandIDBase(id, o.commandID))
			if lerr != nil {
				return nil, attempt, fmt.Errorf("aggregate: update %q: %w; look up command %q: %w", id, err, o.commandID, lerr)
			}
			if !done {
				return nil, attempt, fmt.Errorf("aggregate: update %q: %w", id, err)
			}
			// It may have been stored since the load: load again.
			if err := r.loadStored(ctx, a, 0); err != nil {
				return nil, attempt, err
			}
			return a, attempt, nil
		}
		if len(events) == 0 {
			return a, attempt, nil
		}
		a.Record(events...)
		err = r.save(ctx, a, o)
		if err == nil {
			if saved != nil {
				*saved = len(events)
			}
			return a, attempt, nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return nil, attempt, err
		}
		if attempt >= r.cfg.MaxAttempts {
			r.log(ctx, slog.LevelWarn, "esv2: update gave up", id, attempt, err)
			return nil, attempt, fmt.Errorf("aggregate: update %q: %w after %d attempts: %w", id, ErrGaveUp, attempt, err)
		}
		r.log(ctx, slog.LevelDebug, "esv2: update conflict, retrying", id, attempt, err)
		r.updates.markContended(id, time.Now())
		if held == nil {
			if held, err = r.lockStream(ctx, id); err != nil {
				return nil, attempt, fmt.Errorf("aggregate: update %q: %w", id, err)
			}
		}
		// Under the lock no pause: the writers this Update can still lose
		// to were already saving when it took the lock (see Update), and
		// the one that just won is done. Without it (a store that cannot
		// lock), writers spread out by pausing.
		if held == nil {
			if err := r.pause(ctx, attempt, time.Since(start)); err != nil {
				return nil, attempt, fmt.Errorf("aggregate: update %q: %w", id, err)
			}
		}
		// Load again rather than roll back to the state before Record: an
		// Evolve that changes a map of the state in place would have
		// changed that state too.
		start = time.Now()
		if a, err = r.Load(ctx, id); err != nil {
			return nil, attempt, err
		}
	}
}

// firstLock decides whether an Update's first attempt takes the stream's
// cross-process lock, and takes it if so: when the stream is contended
// (see contendedFor), or when another holder has or awaits the lock (one
// look, StreamLocked); then the stream is contended. It returns nil when
// the Update goes without the lock.
func (r *Repository[S, E]) firstLock(ctx context.Context, id string) (func(context.Context) error, error) {
	if r.locker == nil || r.noLocker.Load() {
		return nil, nil
	}
	if !r.updates.contended(id, time.Now()) {
		locked, err := r.locker.StreamLocked(ctx, id)
		if err != nil || !locked {
			return nil, r.lockErr(err)
		}
		r.updates.markContended(id, time.Now())
	}
	return r.lockStream(ctx, id)
}

// lockStream waits for the stream's cross-process lock. It returns nil
// (and no error) when the store cannot lock streams.
func (r *Repository[S, E]) lockStream(ctx context.Context, id string) (func(context.Context) error, error) {
	if r.locker == nil || r.noLocker.Load() {
		return nil, nil
	}
	unlock, err := r.locker.LockStream(ctx, id)
	return unlock, r.lockErr(err)
}

// lockErr turns the store's answer that it cannot lock streams into nil,
// and remembers it. An invalid stream ID is nil too: the load reports it,
// as over any store.
func (r *Repository[S, E]) lockErr(err error) error {
	if errors.Is(err, errors.ErrUnsupported) {
		r.noLocker.Store(true)
		return nil
	}
	if errors.Is(err, eventstore.ErrInvalidInput) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lock stream: %w", err)
	}
	return nil
}

// unlockStream releases the stream's cross-process lock. The Update's
// outcome stands whatever happens here: the store releases a lock it
// could not unlock by ending the session that held it (see
// eventstore.StreamLocker), so a failure is only logged.
func (r *Repository[S, E]) unlockStream(ctx context.Context, id string, unlock func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	if err := unlock(ctx); err != nil && r.cfg.Logger != nil {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "esv2: update could not unlock its stream (the store released it)",
			slog.String("stream", id), slog.String("error", err.Error()))
	}
}

// unlockTimeout bounds the release of a stream's lock: past it the store
// gives up on telling the database and ends the lock's session.
const unlockTimeout = 5 * time.Second

// pause waits a random time that grows with the attempt number, so that
// writers contending for one stream spread out instead of colliding again.
// The unit is the time the failed attempt took (at least RetryDelay): the
// window a rival needs to load, decide and save.
func (r *Repository[S, E]) pause(ctx context.Context, attempt int, took time.Duration) error {
	if r.cfg.RetryDelay < 0 {
		return ctx.Err()
	}
	limit := max(took, r.cfg.RetryDelay) << min(attempt-1, 5)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
