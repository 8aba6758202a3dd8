package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// The lifecycle workload: appends (with event IDs, retried with the same
// IDs after an uncertain answer, and without IDs) and snapshot saves race
// DeleteStream, TruncateStream and Purge on a small set of shared streams, from several
// processes, while the parent kills the processes and (on PostgreSQL)
// their server connections. Every operation is logged before the call and
// after its answer, with the wall-clock times of both, so that the
// checker can order an operation answered before another began.

// LKind names what a lifecycle-workload operation did.
type LKind string

// The operations of the lifecycle workload.
const (
	LAppend   LKind = "append"   // Append with event IDs (Data = the ID), Any
	LAppendNI LKind = "appendni" // Append without IDs (Data = a marker), Any
	LTruncate LKind = "truncate" // TruncateStream(Before)
	LDelete   LKind = "delete"   // DeleteStream(Expected)
	LSnapshot LKind = "snapshot" // SaveSnapshot at the version last learnt
	LPurge    LKind = "purge"    // the store's Purge (housekeeping), concurrently with the rest
)

// LOp is one operation of the lifecycle workload, logged before the call
// (empty Outcome) and after it.
type LOp struct {
	Kind   LKind  `json:"k"`
	Stream string `json:"s"`
	// Key identifies the operation (a retry has its own).
	Key string `json:"y"`
	// Markers are the Data of the appended events (and their IDs for
	// LAppend), in batch order.
	Markers []string `json:"m,omitempty"`
	// Try is 0 for a first attempt, n for the n-th retry of the same
	// IDs.
	Try int `json:"t,omitempty"`
	// Before is a truncation's bound; Expected a deletion's expectation
	// (eventstore.Any is -1).
	Before   uint64  `json:"b,omitempty"`
	Expected int64   `json:"x,omitempty"`
	Outcome  Outcome `json:"o,omitempty"`
	// DeletedErr: the answer was a *StreamDeletedError.
	DeletedErr bool `json:"de,omitempty"`
	// Version and Position are what an acknowledged append reported.
	Version  uint64 `json:"v,omitempty"`
	Position uint64 `json:"p,omitempty"`
	Err      string `json:"e,omitempty"`
	// Start and End are wall-clock times (UnixNano) taken just before the
	// call and just after its answer.
	Start int64 `json:"st"`
	End   int64 `json:"en,omitempty"`
}

// LifecycleStreams is the number of shared streams of one generation.
const LifecycleStreams = 8

// LifecycleSlot is how long the writers use one generation of shared
// streams, before the next generation's (deletions end streams for good).
const LifecycleSlot = 500 * time.Millisecond

// LifecycleKeep is the stream the writers append to and truncate, never
// delete, for the whole run; each process watches it.
const LifecycleKeep = "life-keep"

// LifecycleStream is the k-th shared stream of generation gen.
func LifecycleStream(gen, k int) string { return fmt.Sprintf("life-%d-%d", gen, k) }

// BigPayload is the size of the occasional large event.
const BigPayload = 256 << 10

// RunLifecycleChild runs the lifecycle workload on s until ctx ends: cfg.Writers
// goroutines logging to Dir/life-<Child>.log, a watcher of AllStreams
// logging to Dir/lwatch-<Child>.log and one of LifecycleKeep logging to
// Dir/lkwatch-<Child>.log (each resumed after its last logged event).
func RunLifecycleChild(ctx context.Context, s eventstore.Store, cfg Config) (err error) {
	if _, ok := s.(eventstore.Lifecycle); !ok {
		return fmt.Errorf("store %T cannot delete", s)
	}
	log, err := openLog(filepath.Join(cfg.Dir, "life-"+cfg.Child+".log"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, log.close()) }()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := watch(ctx, s, eventstore.AllStreams, filepath.Join(cfg.Dir, "lwatch-"+cfg.Child+".log")); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := watch(ctx, s, LifecycleKeep, filepath.Join(cfg.Dir, "lkwatch-"+cfg.Child+".log")); err != nil {
			cancel(err)
		}
	})
	for g := range cfg.Writers {
		wg.Go(func() {
			w := &lifeWriter{s: s, l: s.(eventstore.Lifecycle), log: log, cfg: cfg, g: g,
				rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Run*1000+g))), known: map[string]uint64{}}
			if err := w.run(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return failure(ctx)
}

type lifeWriter struct {
	s     eventstore.Store
	l     eventstore.Lifecycle
	log   *logFile
	cfg   Config
	g     int
	rng   *rand.Rand
	seq   int
	known map[string]uint64 // a stream's version as last learnt
}

// ClassifyL is Classify, with a deleted stream, a stream never written
// (ErrNotFound) and a validation error counted as refusals.
func ClassifyL(err error) Outcome {
	if errors.Is(err, eventstore.ErrStreamDeleted) || errors.Is(err, eventstore.ErrNotFound) {
		return Refused
	}
	return Classify(err)
}

func (w *lifeWriter) run(ctx context.Context) error {
	for ctx.Err() == nil {
		// The streams of the current slot of wall-clock time, shared by
		// every process; now and then the previous slot's, whose deleted
		// ones must still refuse.
		gen := int(time.Now().UnixMilli() / LifecycleSlot.Milliseconds())
		if w.rng.IntN(10) == 0 {
			gen--
		}
		stream := LifecycleStream(gen, w.rng.IntN(LifecycleStreams))
		if w.rng.IntN(15) == 0 {
			stream = LifecycleKeep
		}
		op := LOp{Stream: stream, Key: fmt.Sprintf("%s-r%d-g%d-%d", w.cfg.Child, w.cfg.Run, w.g, w.seq)}
		w.seq++
		switch r := w.rng.IntN(100); {
		case r < 63:
			op.Kind = LAppend
		case r < 83:
			op.Kind = LAppendNI
		case r < 86:
			op.Kind = LSnapshot
		case r < 97:
			op.Kind = LTruncate
			// Mostly inside the stream, sometimes 0 or past its end
			// (refused), sometimes a second truncation at the same point.
			op.Before = uint64(w.rng.IntN(int(w.known[stream]) + 3))
		case w.rng.IntN(10) == 0:
			op.Kind = LPurge // 3 in 1000 operations
		case stream == LifecycleKeep:
			op.Kind = LTruncate
			op.Before = uint64(w.rng.IntN(int(w.known[stream]) + 3))
		default:
			op.Kind = LDelete
			op.Expected = int64(eventstore.Any)
			if w.rng.IntN(3) == 0 {
				op.Expected = int64(eventstore.Exact(w.known[stream]))
			}
		}
		if op.Kind == LAppend || op.Kind == LAppendNI {
			op.Markers = make([]string, 1+w.rng.IntN(3))
			for i := range op.Markers {
				op.Markers[i] = fmt.Sprintf("%s-%d", op.Key, i)
			}
		}
		big := w.rng.IntN(200) == 0
		for {
			err := w.do(ctx, &op, big)
			if err != nil {
				return err
			}
			// An append with IDs whose answer was uncertain is retried
			// with the same IDs, as a caller would, up to 3 times.
			if op.Kind != LAppend || op.Try >= 3 || (op.Outcome != Unknown && op.Outcome != Failed) || ctx.Err() != nil {
				break
			}
			op = LOp{Kind: LAppend, Stream: op.Stream, Key: fmt.Sprintf("%s-r%d-g%d-%d", w.cfg.Child, w.cfg.Run, w.g, w.seq), Markers: op.Markers, Try: op.Try + 1}
			w.seq++
		}
	}
	return nil
}

// do runs op, logging it before and after; it returns only a logging
// error.
func (w *lifeWriter) do(ctx context.Context, op *LOp, big bool) error {
	op.Start = time.Now().UnixNano()
	if err := w.log.write(line{K: "l", LOp: op}); err != nil {
		return err
	}
	var err error
	switch op.Kind {
	case LAppend, LAppendNI:
		evs := make([]eventstore.Event, len(op.Markers))
		for i, m := range op.Markers {
			evs[i] = eventstore.Event{Type: CommitEventType, Data: []byte(m)}
			if op.Kind == LAppend {
				evs[i].ID = m
			}
			if big && i == 0 {
				evs[i].Data = append([]byte(m+"|"), bytes.Repeat([]byte{'x'}, BigPayload)...)
			}
		}
		var res eventstore.AppendResult
		res, err = w.s.Append(ctx, op.Stream, eventstore.Any, evs...)
		if err == nil {
			op.Version, op.Position = res.Version, res.Position
			w.known[op.Stream] = res.Version
		}
	case LTruncate:
		err = w.l.TruncateStream(ctx, op.Stream, op.Before)
	case LDelete:
		err = w.l.DeleteStream(ctx, op.Stream, eventstore.ExpectedVersion(op.Expected))
	case LSnapshot:
		op.Version = max(1, w.known[op.Stream])
		err = w.s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: op.Stream, Version: op.Version, Data: []byte(op.Key)})
	case LPurge:
		if p, ok := w.s.(interface{ Purge(context.Context) error }); ok {
			err = p.Purge(ctx)
		}
	}
	op.End = time.Now().UnixNano()
	op.Outcome = ClassifyL(err)
	var ce *eventstore.ConflictError
	if errors.As(err, &ce) {
		w.known[op.Stream] = ce.Actual
	}
	if err != nil {
		op.Err = err.Error()
		op.DeletedErr = errors.Is(err, eventstore.ErrStreamDeleted)
	}
	if ctx.Err() != nil && op.Outcome != Acked {
		// Ended by the run's end, not by a fault: log no answer.
		op.Outcome, op.End, op.Err = "", 0, ""
	}
	return w.log.write(line{K: "l", LOp: op})
}

// ReadLifecycleLogs returns the operations logged in dir, each with its
// answer when it got one, sorted by Start.
func ReadLifecycleLogs(dir string) ([]LOp, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "life-*.log"))
	if err != nil {
		return nil, err
	}
	byKey := map[string]int{}
	var ops []LOp
	for _, p := range paths {
		lines, err := readLines(p)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if l.K != "l" || l.LOp == nil {
				continue
			}
			if i, ok := byKey[l.LOp.Key]; ok {
				if l.LOp.Outcome != "" {
					ops[i] = *l.LOp
				}
				continue
			}
			byKey[l.LOp.Key] = len(ops)
			ops = append(ops, *l.LOp)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Start < ops[j].Start })
	return ops, nil
}

// ReadLifecycleWatches returns each child's watch logs, by file name
// (lwatch-* of AllStreams, lkwatch-* of LifecycleKeep).
func ReadLifecycleWatches(dir string) (map[string][]Seen, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "l*watch-*.log"))
	if err != nil {
		return nil, err
	}
	out := map[string][]Seen{}
	for _, p := range paths {
		lines, err := readLines(p)
		if err != nil {
			return nil, err
		}
		var seen []Seen
		for _, l := range lines {
			if l.K == "w" && l.Seen != nil {
				seen = append(seen, *l.Seen)
			}
		}
		out[filepath.Base(p)] = seen
	}
	return out, nil
}

// LifecycleInput is what CheckLifecycle compares.
type LifecycleInput struct {
	// All is Read(AllStreams) of the final store (Marker = Data, Stream,
	// Version, Position), and IDs the stored events' IDs, by position.
	All []Stored
	IDs map[uint64]string
	// Infos is Info of every stream the workload touched, read from a
	// fresh handle after the run.
	Infos map[string]eventstore.StreamInfo
	// Streams is Read(stream) of every stream the workload touched.
	Streams map[string][]Stored
	// Snapshots holds the version of every such stream's default
	// snapshot, when it has one.
	Snapshots map[string]uint64
	// Head is Info(AllStreams).Position.
	Head uint64
	Ops  []LOp
	// Watches are the watch logs, by file: "lwatch-*" of AllStreams,
	// "lkwatch-*" of LifecycleKeep.
	Watches map[string][]Seen
}

// CollectLifecycle reads the final store and the logs of dir.
func CollectLifecycle(ctx context.Context, s eventstore.Store, dir string) (LifecycleInput, error) {
	ops, err := ReadLifecycleLogs(dir)
	if err != nil {
		return LifecycleInput{}, err
	}
	watches, err := ReadLifecycleWatches(dir)
	if err != nil {
		return LifecycleInput{}, err
	}
	in := LifecycleInput{Ops: ops, Watches: watches, IDs: map[uint64]string{}, Snapshots: map[string]uint64{}, Infos: map[string]eventstore.StreamInfo{}, Streams: map[string][]Stored{}}
	for r, err := range s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			return LifecycleInput{}, fmt.Errorf("read all: %w", err)
		}
		in.All = append(in.All, Stored{Marker: lifeMarker(r.Data), Stream: r.StreamID, Version: r.Version, Position: r.Position})
		in.IDs[r.Position] = r.ID
	}
	for _, op := range ops {
		if _, ok := in.Infos[op.Stream]; ok {
			continue
		}
		info, err := s.Info(ctx, op.Stream)
		if err != nil {
			return LifecycleInput{}, fmt.Errorf("info %q: %w", op.Stream, err)
		}
		in.Infos[op.Stream] = info
		list := []Stored{}
		for r, err := range s.Read(ctx, op.Stream, eventstore.ReadOptions{}) {
			if err != nil {
				return LifecycleInput{}, fmt.Errorf("read %q: %w", op.Stream, err)
			}
			list = append(list, Stored{Marker: lifeMarker(r.Data), Stream: r.StreamID, Version: r.Version, Position: r.Position})
		}
		in.Streams[op.Stream] = list
		switch sn, err := s.LoadSnapshot(ctx, op.Stream, ""); {
		case err == nil:
			in.Snapshots[op.Stream] = sn.Version
		case !errors.Is(err, eventstore.ErrNotFound):
			return LifecycleInput{}, fmt.Errorf("load snapshot %q: %w", op.Stream, err)
		}
	}
	info, err := s.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return LifecycleInput{}, fmt.Errorf("info all: %w", err)
	}
	in.Head = info.Position
	return in, nil
}

// lifeMarker is the marker of a stored event's Data (a large event's Data
// is its marker, "|" and padding).
func lifeMarker(data []byte) string {
	m, _, _ := bytes.Cut(data, []byte("|"))
	return string(m)
}
