package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// The commit workload (issue 9 item 1): appends of events WITHOUT IDs, so
// that no idempotency rule hides an append run twice, with Exact and Any
// expectations, and Repository.Update without a command ID. Each event's
// Data carries a marker unique to the run, from which the checker counts
// how many times each append or command was stored.

// OpKind names what a commit-workload operation did.
type OpKind string

// The operations of the commit workload.
const (
	OpExact  OpKind = "exact"  // Append with Exact(the version the writer last learnt), to the writer's own stream
	OpAny    OpKind = "any"    // Append with Any, to a stream shared by every writer
	OpUpdate OpKind = "update" // Repository.Update adding one to the writer's own counter, no command ID
)

// Outcome is the answer an operation got.
type Outcome string

// The outcomes. An operation whose answer was never logged (the process
// was killed while it ran) has the empty Outcome.
const (
	// Acked: success; the operation must be stored exactly once.
	Acked Outcome = "ack"
	// Refused: a definite refusal (a *ConflictError, invalid input); the
	// operation must not be stored.
	Refused Outcome = "refused"
	// Unknown: eventstore.ErrUnknownOutcome; stored once or not at all.
	Unknown Outcome = "unknown"
	// Failed: another error (connection lost, context ended ...); stored
	// once or not at all.
	Failed Outcome = "error"
)

// Classify returns the Outcome an error (nil for success) stands for.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return Acked
	case errors.Is(err, eventstore.ErrUnknownOutcome):
		return Unknown
	case errors.Is(err, eventstore.ErrConcurrency), errors.Is(err, eventstore.ErrInvalidInput), errors.Is(err, eventstore.ErrIdempotency):
		return Refused
	default:
		return Failed
	}
}

// Op is one operation of the commit workload. It is logged twice: before
// the call, with an empty Outcome, and after it, with the answer.
type Op struct {
	Kind   OpKind `json:"k"`
	Stream string `json:"s"`
	// Markers are the Data markers of the operation's events, in batch
	// order.
	Markers []string `json:"m"`
	// Expected is the expectation of an append (eventstore.Any is -1).
	Expected int64 `json:"x"`
	// Outcome is the answer, empty when none was logged.
	Outcome Outcome `json:"o,omitempty"`
	// Version and Position are what an acknowledged append reported
	// (an Update reports only the aggregate's version).
	Version  uint64 `json:"v,omitempty"`
	Position uint64 `json:"p,omitempty"`
	// Err is the error's text.
	Err string `json:"e,omitempty"`
}

// Mix weighs the operations a commit-workload writer picks from.
type Mix struct {
	Exact, Any, Update int
}

// CommitConfig describes one process's part of a commit-workload run.
type CommitConfig struct {
	// Dir holds the logs.
	Dir string
	// Child names the process (markers and streams include it).
	Child string
	// Run distinguishes restarts of a child (markers include it).
	Run int
	// Writers is the number of writer goroutines.
	Writers int
	// Seed seeds the random choices.
	Seed uint64
	// Mix weighs the operations; the zero Mix means {Exact: 4, Any: 3,
	// Update: 3}.
	Mix Mix
}

// AnyStreams are the streams shared by the writers' Any appends.
var AnyStreams = []string{"any-0", "any-1", "any-2", "any-3"}

// Added is the counter event of the workload's Update operations. M is
// its marker.
type Added struct {
	M string `json:"M"`
}

// AddedType is the event type Added is stored under.
const AddedType = "torture.added"

// CommitEventType is the event type of the workload's appends; their Data
// is the marker itself.
const CommitEventType = "torture.commit"

// CounterCodec returns the codec of Added: JSON, so that the marker can be
// read back without it.
func CounterCodec() (*codec.Registry[Added], error) {
	reg := codec.New[Added](codec.WithEncoding(codec.JSON{}))
	return reg, codec.Register[Added](reg, AddedType)
}

// RunCommitChild runs the commit workload on s until ctx ends, logging
// every operation and its answer to Dir/commit-<Child>.log. It returns a
// logging error, or an error when an operation that cannot be refused
// was: nothing else ends it early.
func RunCommitChild(ctx context.Context, s eventstore.Store, cfg CommitConfig) (err error) {
	if cfg.Mix == (Mix{}) {
		cfg.Mix = Mix{Exact: 4, Any: 3, Update: 3}
	}
	reg, err := CounterCodec()
	if err != nil {
		return err
	}
	repo, err := aggregate.NewRepository(s, aggregate.Config[int, Added]{
		Evolve: func(n int, _ Added) int { return n + 1 },
		Codec:  reg,
	})
	if err != nil {
		return err
	}
	log, err := openLog(filepath.Join(cfg.Dir, "commit-"+cfg.Child+".log"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, log.close()) }()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for g := range cfg.Writers {
		wg.Go(func() {
			w := &commitWriter{s: s, repo: repo, log: log, cfg: cfg, g: g, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Run*1000+g)))}
			if err := w.run(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return failure(ctx)
}

type commitWriter struct {
	s    eventstore.Store
	repo *aggregate.Repository[int, Added]
	log  *logFile
	cfg  CommitConfig
	g    int
	rng  *rand.Rand
	seq  int
	// known is the version of the writer's own Exact stream as last
	// learnt (0 until then: a restarted writer learns it from the first
	// conflict).
	known uint64
}

func (w *commitWriter) run(ctx context.Context) error {
	own := fmt.Sprintf("%s-g%d", w.cfg.Child, w.g)
	total := w.cfg.Mix.Exact + w.cfg.Mix.Any + w.cfg.Mix.Update
	for ctx.Err() == nil {
		var op Op
		switch r := w.rng.IntN(total); {
		case r < w.cfg.Mix.Exact:
			op = Op{Kind: OpExact, Stream: "x-" + own, Expected: int64(eventstore.Exact(w.known))}
		case r < w.cfg.Mix.Exact+w.cfg.Mix.Any:
			op = Op{Kind: OpAny, Stream: AnyStreams[w.rng.IntN(len(AnyStreams))], Expected: int64(eventstore.Any)}
		default:
			op = Op{Kind: OpUpdate, Stream: "u-" + own, Expected: int64(eventstore.Any)}
		}
		n := 1
		if op.Kind != OpUpdate {
			n += w.rng.IntN(3)
		}
		op.Markers = make([]string, n)
		for i := range op.Markers {
			op.Markers[i] = fmt.Sprintf("%s-r%d-g%d-%d-%d", w.cfg.Child, w.cfg.Run, w.g, w.seq, i)
		}
		w.seq++
		if err := w.log.write(line{K: "o", Op: &op}); err != nil {
			return err
		}
		err := w.do(ctx, &op)
		op.Outcome = Classify(err)
		if err != nil {
			op.Err = err.Error()
		}
		if err := w.log.write(line{K: "o", Op: &op}); err != nil {
			return err
		}
		var ce *eventstore.ConflictError
		switch {
		case op.Kind != OpExact:
		case err == nil:
			w.known = op.Version
		case errors.As(err, &ce):
			w.known = ce.Actual
		}
		if op.Outcome == Refused && !errors.Is(err, eventstore.ErrConcurrency) {
			return fmt.Errorf("%s %v on %q refused: %w", op.Kind, op.Markers, op.Stream, err)
		}
	}
	return nil
}

// do runs op and fills in what an acknowledgement reported.
func (w *commitWriter) do(ctx context.Context, op *Op) error {
	if op.Kind == OpUpdate {
		a, err := w.repo.Update(ctx, op.Stream, func(int) ([]Added, error) { return []Added{{M: op.Markers[0]}}, nil })
		if err == nil {
			op.Version = a.Version()
		}
		return err
	}
	evs := make([]eventstore.Event, len(op.Markers))
	for i, m := range op.Markers {
		evs[i] = eventstore.Event{Type: CommitEventType, Data: []byte(m)}
	}
	res, err := w.s.Append(ctx, op.Stream, eventstore.ExpectedVersion(op.Expected), evs...)
	if err == nil {
		op.Version, op.Position = res.Version, res.Position
	}
	return err
}

// ReadCommitLogs returns the operations logged in dir, each with its
// answer (an empty Outcome when it got none), sorted by first marker.
func ReadCommitLogs(dir string) ([]Op, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "commit-*.log"))
	if err != nil {
		return nil, err
	}
	byMarker := map[string]int{}
	var ops []Op
	for _, p := range paths {
		lines, err := readLines(p)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if l.K != "o" || l.Op == nil || len(l.Op.Markers) == 0 {
				continue
			}
			if i, ok := byMarker[l.Op.Markers[0]]; ok {
				if l.Op.Outcome != "" {
					ops[i] = *l.Op
				}
				continue
			}
			byMarker[l.Op.Markers[0]] = len(ops)
			ops = append(ops, *l.Op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Markers[0] < ops[j].Markers[0] })
	return ops, nil
}

// CollectCommit reads the final store and the commit logs of dir into a
// CommitInput for CheckCommit.
func CollectCommit(ctx context.Context, s eventstore.Store, dir string) (CommitInput, error) {
	ops, err := ReadCommitLogs(dir)
	if err != nil {
		return CommitInput{}, err
	}
	in := CommitInput{Ops: ops}
	for r, err := range s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			return CommitInput{}, fmt.Errorf("read all: %w", err)
		}
		in.All = append(in.All, Stored{Marker: markerOf(r), Stream: r.StreamID, Version: r.Version, Position: r.Position})
	}
	return in, nil
}

// markerOf returns the marker of a stored event of the workload, or ""
// for an event the workload did not write.
func markerOf(r eventstore.Recorded) string {
	switch r.Type {
	case CommitEventType:
		return string(r.Data)
	case AddedType:
		var a Added
		if json.Unmarshal(r.Data, &a) == nil {
			return a.M
		}
	}
	return ""
}
