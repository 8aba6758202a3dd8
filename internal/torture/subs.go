package torture

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// The subscription workload: writers append to many streams events whose
// Data carries an amount (derived from the event's ID, so the checker can
// verify it), while a group of consumer processes runs two subscriptions
// over them: a transactional read model (count and sum of amounts per
// stream, written in the checkpoint's transaction) and an at-least-once
// delivery log.

// Names of the subscriptions every consumer runs.
const (
	// ReadModelSub is the transactional subscription ([subscription.NewTx])
	// that keeps the read model.
	ReadModelSub = "readmodel"
	// LogSub is the at-least-once subscription ([subscription.New]) that
	// logs every delivery.
	LogSub = "log"
)

// SubStream returns the name of stream i of the subscription workload.
func SubStream(i int) string { return fmt.Sprintf("acct-%02d", i) }

// Amount is the amount the event with ID id carries: from 1 to 1000,
// derived from the ID so that the Data of every stored event can be
// checked.
func Amount(id string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int64(h.Sum32()%1000) + 1
}

// ParseAmount returns the amount an event's Data carries.
func ParseAmount(data []byte) (int64, error) {
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("event data %q: %w", data, err)
	}
	return n, nil
}

// SubWriterConfig describes a writer process of the subscription workload.
type SubWriterConfig struct {
	// Child names the process; Run distinguishes its restarts (event IDs
	// include both).
	Child string
	Run   int
	// Writers is the number of writer goroutines; Streams the number of
	// streams they append to.
	Writers, Streams int
	// Pause is the longest random pause between two appends of a
	// goroutine: it keeps the consumers' lag small enough to drain in
	// seconds at the end of a round.
	Pause time.Duration
	Seed  uint64
}

// RunSubWriter appends batches of one to three events, with IDs and
// expectation Any, to random streams until ctx ends (or the process is
// killed). The store is the record: a writer keeps no log. It returns an
// append error that no fault explains (a refused append).
func RunSubWriter(ctx context.Context, s eventstore.Store, cfg SubWriterConfig) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for g := range cfg.Writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Run*1000+g)))
			for seq := 0; ctx.Err() == nil; seq++ {
				stream := SubStream(rng.IntN(cfg.Streams))
				evs := make([]eventstore.Event, 1+rng.IntN(3))
				for i := range evs {
					id := fmt.Sprintf("%s-r%d-g%d-%d-%d", cfg.Child, cfg.Run, g, seq, i)
					evs[i] = eventstore.Event{ID: id, Type: "deposit", Data: []byte(strconv.FormatInt(Amount(id), 10))}
				}
				if _, err := s.Append(ctx, stream, eventstore.Any, evs...); err != nil && ErrorClass(err) == "refused" {
					cancel(fmt.Errorf("append to %q: %w", stream, err))
					return
				}
				if cfg.Pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(rng.Int64N(int64(cfg.Pause)))):
					}
				}
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// ConsumerConfig describes a consumer process of the subscription
// workload: one member of the group that runs both subscriptions.
type ConsumerConfig struct {
	// Dir holds the delivery logs, one per member
	// (deliveries-<member>.log), appended to across restarts.
	Dir string
	// Member is the member's name in both subscriptions.
	Member string
	// Partitions, LeaseTTL and BatchSize are the subscriptions' options.
	Partitions int
	LeaseTTL   time.Duration
	BatchSize  int
	// Work is the longest random time the log handler spends on a batch
	// between its start and end times, so that overlapping handling
	// would show.
	Work time.Duration
	Seed uint64
}

// ApplyFunc adds event e, carrying amount, to the read model in tx:
// count+1 and sum+amount for its stream, and its version as the last
// applied. It applies blindly (no check of the version against the last
// one), so that an event applied twice shows in the counts.
type ApplyFunc[Tx any] func(ctx context.Context, tx Tx, e eventstore.Recorded, amount int64) error

// RunConsumer runs the member's two subscriptions of s until ctx ends, and
// returns the first error a subscription's Run returned (a stop: a batch
// its handler still failed on after the retries, say).
func RunConsumer[Tx any](ctx context.Context, s subscription.Store[Tx], cfg ConsumerConfig, apply ApplyFunc[Tx]) (err error) {
	log, err := openLog(filepath.Join(cfg.Dir, "deliveries-"+cfg.Member+".log"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, log.close()) }()
	opts := []subscription.Option{
		subscription.WithPartitions(cfg.Partitions),
		subscription.WithMember(cfg.Member),
		subscription.WithLeaseTTL(cfg.LeaseTTL),
		subscription.WithBatchSize(cfg.BatchSize),
	}
	rm, err := subscription.NewTx(s, ReadModelSub, func(ctx context.Context, tx Tx, events []eventstore.Recorded) error {
		for _, e := range events {
			amount, err := ParseAmount(e.Data)
			if err != nil {
				return err
			}
			if err := apply(ctx, tx, e, amount); err != nil {
				return err
			}
		}
		return nil
	}, opts...)
	if err != nil {
		return err
	}
	var mu sync.Mutex // the handler is called by one goroutine; the lock only guards rng
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(time.Now().UnixNano())))
	var lines []line
	lg, err := subscription.New(s, LogSub, func(_ context.Context, events []eventstore.Recorded) error {
		mu.Lock()
		defer mu.Unlock()
		start := time.Now().UnixNano()
		if cfg.Work > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(cfg.Work)))) // the handler's work, so that overlapping handling has room to show
		}
		end := time.Now().UnixNano()
		lines = lines[:0]
		for _, e := range events {
			lines = append(lines, line{K: "d", Delivery: &Delivery{
				Member: cfg.Member, Stream: e.StreamID, Version: e.Version, Position: e.Position, Start: start, End: end,
			}})
		}
		// One write(2) for the batch, after its end time: the lines of a
		// batch the process was killed in are its prefix at most.
		return log.writeLines(lines)
	}, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, sub := range []*subscription.Subscription{rm, lg} {
		wg.Go(func() {
			if err := sub.Run(ctx); err != nil {
				cancel(fmt.Errorf("subscription %q, member %s: %w", sub.Name(), cfg.Member, err))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// ReadDeliveries reads the delivery logs of dir: one DeliveryLog per
// member, its batches in the order they were logged.
func ReadDeliveries(dir string) ([]DeliveryLog, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "deliveries-*.log"))
	if err != nil {
		return nil, err
	}
	var out []DeliveryLog
	for _, p := range paths {
		lines, err := readLines(p)
		if err != nil {
			return nil, err
		}
		dl := DeliveryLog{Name: filepath.Base(p)}
		for _, l := range lines {
			d := l.Delivery
			if l.K != "d" || d == nil {
				continue
			}
			// A batch's lines are consecutive and share member and start.
			if n := len(dl.Batches); n == 0 || dl.Batches[n-1].Member != d.Member || dl.Batches[n-1].Start != d.Start {
				dl.Batches = append(dl.Batches, DeliveryBatch{Member: d.Member, Start: d.Start, End: d.End})
			}
			b := &dl.Batches[len(dl.Batches)-1]
			b.Events = append(b.Events, Delivered{Stream: d.Stream, Version: d.Version, Position: d.Position})
		}
		out = append(out, dl)
	}
	return out, nil
}
