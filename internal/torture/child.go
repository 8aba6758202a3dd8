package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// Streams is the set of overlapping streams every writer appends to. One
// is shaped like SQL, to be stored and read back as a plain ID.
var Streams = []string{"s0", "s1", "s2", "s3", "s4", "x'; DROP TABLE events; --"}

// Config describes one child process's part of a run.
type Config struct {
	// Dir holds the logs.
	Dir string
	// Child names the process; it keeps its name across restarts, so its
	// watchers resume from their own logs.
	Child string
	// Run distinguishes the restarts of a child (event IDs include it).
	Run int
	// Writers is the number of writer goroutines.
	Writers int
	// Seed seeds the random choices.
	Seed uint64
}

// ErrorClass names the kind of an append error for the run's summary.
func ErrorClass(err error) string {
	switch {
	case errors.Is(err, eventstore.ErrConcurrency):
		return "conflict"
	case errors.Is(err, eventstore.ErrInvalidInput), errors.Is(err, eventstore.ErrIdempotency):
		return "refused" // never expected: reported as a failure by the parent
	case errors.Is(err, eventstore.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "context"
	default:
		return "other"
	}
}

// RunChild runs the writers and watchers of one child process on s until
// ctx ends (or the process is killed). It returns the first logging or
// unexpected error.
func RunChild(ctx context.Context, s eventstore.Store, cfg Config) (err error) {
	wlog, err := openLog(filepath.Join(cfg.Dir, "writer-"+cfg.Child+".log"))
	if err != nil {
		return err
	}
	// The log is the record of acknowledged appends: losing its end to a
	// failed close must not pass unnoticed.
	defer func() { err = errors.Join(err, wlog.close()) }()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(err error) { cancel(err) }

	watched := append([]string{eventstore.AllStreams}, Streams[:3]...)
	watched = append(watched, Streams[len(Streams)-1])
	for i, stream := range watched {
		path := filepath.Join(cfg.Dir, fmt.Sprintf("watch-%s-%d.log", cfg.Child, i))
		wg.Go(func() {
			if err := watch(ctx, s, stream, path); err != nil {
				fail(fmt.Errorf("watcher of %q: %w", stream, err))
			}
		})
	}

	// Retry some batches an earlier run of this child attempted but was
	// never told the outcome of (killed, or an error): each is stored
	// whole already, or is stored whole now, never twice.
	pending, err := unacknowledged(filepath.Join(cfg.Dir, "writer-"+cfg.Child+".log"))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Run)))
	rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	if len(pending) > 8 {
		pending = pending[:8]
	}
	for _, b := range pending {
		if _, err := appendLogged(ctx, s, wlog, b, eventstore.Any); err != nil && ctx.Err() == nil && ErrorClass(err) == "refused" {
			return fmt.Errorf("retry of %v: %w", b.IDs, err)
		}
	}

	for g := range cfg.Writers {
		wg.Go(func() {
			w := &writer{s: s, log: wlog, cfg: cfg, g: g, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Run*1000+g))), known: map[string]uint64{}}
			if err := w.run(ctx); err != nil {
				fail(err)
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	return failure(ctx)
}

type writer struct {
	s     eventstore.Store
	log   *logFile
	cfg   Config
	g     int
	rng   *rand.Rand
	seq   int
	known map[string]uint64
}

func (w *writer) run(ctx context.Context) error {
	for ctx.Err() == nil {
		stream := Streams[w.rng.IntN(len(Streams))]
		n := 1 + w.rng.IntN(4)
		b := Batch{Stream: stream, IDs: make([]string, n)}
		for i := range b.IDs {
			b.IDs[i] = fmt.Sprintf("%s-r%d-g%d-%d-%d", w.cfg.Child, w.cfg.Run, w.g, w.seq, i)
		}
		w.seq++
		for attempt := 0; ; attempt++ {
			res, err := appendLogged(ctx, w.s, w.log, b, w.expected(stream))
			var ce *eventstore.ConflictError
			switch {
			case err == nil:
				w.known[stream] = res.Version
			case errors.As(err, &ce):
				w.known[stream] = ce.Actual
			case ErrorClass(err) == "refused":
				return fmt.Errorf("append %v to %q: %w", b.IDs, stream, err)
			}
			// Retry at random: after a success it must be recognised as a
			// retry; after an error it may now be stored.
			if ctx.Err() != nil || attempt >= 3 || w.rng.IntN(4) != 0 {
				break
			}
		}
	}
	return nil
}

// expected picks a random expectation, right more often than not.
func (w *writer) expected(stream string) eventstore.ExpectedVersion {
	v := w.known[stream]
	switch r := w.rng.IntN(10); {
	case r < 3:
		return eventstore.Any
	case r == 3:
		return eventstore.NoStream
	case r == 4:
		return eventstore.StreamExists
	case r == 5 && v > 0:
		return eventstore.Exact(v - 1)
	case r == 6:
		return eventstore.Exact(v + 1)
	default:
		return eventstore.Exact(v)
	}
}

// appendLogged logs the batch as attempted, appends it, and logs the
// acknowledgement or the error.
func appendLogged(ctx context.Context, s eventstore.Store, log *logFile, b Batch, expected eventstore.ExpectedVersion) (eventstore.AppendResult, error) {
	if err := log.write(line{K: "i", Batch: &b}); err != nil {
		return eventstore.AppendResult{}, err
	}
	evs := make([]eventstore.Event, len(b.IDs))
	for i, id := range b.IDs {
		evs[i] = eventstore.Event{ID: id, Type: "torture", Data: []byte(id), Metadata: map[string]string{"writer": id[:strings.IndexByte(id, '-')]}}
	}
	res, err := s.Append(ctx, b.Stream, expected, evs...)
	if err != nil {
		if ctx.Err() == nil {
			if lerr := log.write(line{K: "e", Class: ErrorClass(err), Err: err.Error()}); lerr != nil {
				return res, lerr
			}
		}
		return res, err
	}
	ack := Ack{Batch: b, Version: res.Version, Position: res.Position, Appended: res.Appended, Duplicates: len(res.Duplicates)}
	return res, log.write(line{K: "a", Ack: &ack})
}

// unacknowledged returns the batches of a writer log that were attempted
// but never acknowledged.
func unacknowledged(path string) ([]Batch, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	acked := map[string]bool{}
	for _, l := range lines {
		if l.K == "a" && l.Ack != nil {
			acked[l.Ack.IDs[0]] = true
		}
	}
	var out []Batch
	seen := map[string]bool{}
	for _, l := range lines {
		if l.K == "i" && l.Batch != nil && !acked[l.Batch.IDs[0]] && !seen[l.Batch.IDs[0]] {
			seen[l.Batch.IDs[0]] = true
			out = append(out, *l.Batch)
		}
	}
	return out, nil
}

// watch follows stream, resuming after the last event its log holds, and
// logs every event it yields. A watch that ends with an error other than
// the end of ctx is resumed, from the last event it logged, as a consumer
// would.
func watch(ctx context.Context, s eventstore.Store, stream, path string) (err error) {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	log, err := openLog(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, log.close()) }()
	if len(lines) == 0 {
		if err := log.write(line{K: "h", Stream: stream}); err != nil {
			return err
		}
	}
	var last uint64
	for _, l := range lines {
		if l.K == "w" && l.Seen != nil {
			if stream == eventstore.AllStreams {
				last = l.Seen.Position
			} else {
				last = l.Seen.Version
			}
		}
	}
	for ctx.Err() == nil {
		for r, err := range s.Watch(ctx, stream, eventstore.WatchOptions{From: eventstore.After(last)}) {
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, eventstore.ErrClosed) {
					return err
				}
				if werr := log.write(line{K: "e", Class: "watch", Err: err.Error()}); werr != nil {
					return werr
				}
				// Back off a little before resuming, so that a server
				// that is down is not hammered.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				break
			}
			if err := log.write(line{K: "w", Seen: &Seen{Position: r.Position, Stream: r.StreamID, Version: r.Version, ID: r.ID}}); err != nil {
				return err
			}
			if stream == eventstore.AllStreams {
				last = r.Position
			} else {
				last = r.Version
			}
		}
	}
	return nil
}

// Collect reads the final store and the logs of dir into an Input for
// Check.
func Collect(ctx context.Context, s eventstore.Store, dir string) (Input, Logs, error) {
	logs, err := ReadLogs(dir)
	if err != nil {
		return Input{}, logs, err
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		return Input{}, logs, fmt.Errorf("read all: %w", err)
	}
	in := Input{All: all, Streams: map[string][]eventstore.Recorded{}, Intents: logs.Intents, Acks: logs.Acks, Watches: logs.Watches}
	for _, stream := range Streams {
		evs, err := eventstore.Collect(s.Read(ctx, stream, eventstore.ReadOptions{}))
		if err != nil {
			return Input{}, logs, fmt.Errorf("read %q: %w", stream, err)
		}
		in.Streams[stream] = evs
	}
	return in, logs, nil
}

// failure is the error a child's workers ended ctx with, nil when it ended
// as a round does (cancelled or past its deadline).
func failure(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
