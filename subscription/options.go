package subscription

import (
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Option configures a subscription; see [New].
type Option func(*options) error

// Policy is what a subscription does with a batch its handler
// still fails on after the retries.
type Policy int

const (
	// Stop ends Run with a *HandlerError; the checkpoint stays before the
	// batch, so the next Run delivers it again. The default.
	Stop Policy = iota
	// Park retries the batch's events one at a time and sets aside each
	// one that still fails (see [Parked], [ListParked], [Subscription.ReplayParked]),
	// then goes on.
	Park
)

// String returns "stop" or "park".
func (p Policy) String() string {
	if p == Park {
		return "park"
	}
	return "stop"
}

type options struct {
	filter          eventstore.Filter
	batchSize       int
	maxWait         time.Duration
	start           eventstore.Start
	retries         int
	backoff         time.Duration
	maxBackoff      time.Duration
	policy          Policy
	partitions      int // 0: the stored number, or 1 for a new subscription
	member          string
	leaseTTL        time.Duration
	poll            time.Duration
	checkpointEvery time.Duration
	errorBackoff    time.Duration
	maxErrorPause   time.Duration
	hooks           Hooks
	logger          *slog.Logger
}

// Defaults.
const (
	DefaultBatchSize = 100
	// MaxBatchSize is the largest batch size.
	MaxBatchSize           = 10000
	DefaultRetries         = 3
	DefaultBackoff         = 100 * time.Millisecond
	DefaultLeaseTTL        = 10 * time.Second
	defaultPoll            = time.Second
	defaultMaxPause        = 5 * time.Second
	defaultCheckpointEvery = time.Second
	maxErrorTextSize       = 4096
	// maxSyncEvery bounds the time between two looks at the group, and
	// rebalancePoll is the time between them while part of a member's
	// share is held by others.
	maxSyncEvery  = time.Second
	rebalancePoll = 250 * time.Millisecond
	// A group member's read of its partitions spans a window of
	// positions (see step), sized by sizeWindow between these bounds.
	minGroupWindow = 1 << 8
	maxGroupWindow = 1 << 20
	// syncCheckEvery is how many events a catch-up read goes through
	// between two looks at the clock for its sync.
	syncCheckEvery = 64
)

func defaultOptions() options {
	return options{
		batchSize:       DefaultBatchSize,
		retries:         DefaultRetries,
		backoff:         DefaultBackoff,
		maxBackoff:      defaultMaxPause,
		leaseTTL:        DefaultLeaseTTL,
		poll:            defaultPoll,
		checkpointEvery: defaultCheckpointEvery,
		errorBackoff:    DefaultBackoff,
		maxErrorPause:   defaultMaxPause,
	}
}

// WithFilter makes the subscription consume only the events f keeps (a
// stream prefix, event types, metadata conditions); it runs in the
// database. The checkpoint still advances past the events f skips, so a
// restart does not scan them again.
func WithFilter(f eventstore.Filter) Option {
	return func(o *options) error {
		if err := validate.Filter(eventstore.AllStreams, f); err != nil {
			return err
		}
		o.filter = f
		return nil
	}
}

// WithBatchSize sets the most events handed to the handler at once, from 1
// to MaxBatchSize; the default is DefaultBatchSize.
func WithBatchSize(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxBatchSize {
			return invalid("batch size", "%d is not between 1 and %d", n, MaxBatchSize)
		}
		o.batchSize = n
		return nil
	}
}

// WithMaxWait lets a live subscription wait up to d for a batch to fill
// before handing over the events it has; 0 (the default) hands them over
// at once. Catching up, batches are always full.
func WithMaxWait(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("max wait", "%v is negative", d)
		}
		o.maxWait = d
		return nil
	}
}

// WithStart sets where a new subscription begins: FromStart (the default)
// with the first event, FromEnd with the events appended after it is
// created, After(p) past position p. It has no effect on a subscription
// that exists: that one resumes from its checkpoints (see [Reset]).
func WithStart(s eventstore.Start) Option {
	return func(o *options) error {
		o.start = s
		return nil
	}
}

// WithRetries sets how many times a failed batch is tried again (default
// DefaultRetries), waiting first (default DefaultBackoff) before the first
// retry and twice as long before each next one, up to maxBackoff.
func WithRetries(n int, first, maxBackoff time.Duration) Option {
	return func(o *options) error {
		switch {
		case n < 0:
			return invalid("retries", "%d is negative", n)
		case first < 0 || maxBackoff < first:
			return invalid("backoff", "first %v and max %v: want 0 <= first <= max", first, maxBackoff)
		}
		o.retries, o.backoff, o.maxBackoff = n, first, maxBackoff
		return nil
	}
}

// WithPolicy sets what happens to a batch that fails after its retries:
// Stop (the default) or Park.
func WithPolicy(p Policy) Option {
	return func(o *options) error {
		if p != Stop && p != Park {
			return invalid("policy", "unknown policy %d", int(p))
		}
		o.policy = p
		return nil
	}
}

// WithPartitions splits the subscription's events into n partitions by a
// hash of their stream IDs, each with its own checkpoint, so that the
// members of a group (processes running the same subscription) share them;
// see the package documentation. n is fixed when the subscription is
// created: a subscription that exists with another number is refused with
// ErrPartitions (delete it, or reset and recreate, to change it). Without
// this option a new subscription has one partition and an existing one
// keeps its number.
func WithPartitions(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxPartitions {
			return invalid("partitions", "%d is not between 1 and %d", n, MaxPartitions)
		}
		o.partitions = n
		return nil
	}
}

// WithMember names this member of the subscription's group; the default is
// the host name, the process ID and a random suffix. Two running members
// must not share a name.
func WithMember(name string) Option {
	return func(o *options) error {
		if err := checkName("member", name); err != nil {
			return err
		}
		o.member = name
		return nil
	}
}

// WithLeaseTTL sets how long a member's hold on its partitions lasts
// without renewal (default DefaultLeaseTTL). A member renews it, and
// looks at the group, every third of it or every second, whichever is
// sooner (every quarter second while part of its share is still held by
// others), so a member that dies loses its partitions within ttl, plus one
// renewal period until another member notices. A batch's handler must
// finish well within a third of it: a member does not start a batch on a
// lease with less than two thirds of its time left, and one whose lease
// ran out while handling cannot commit (ErrLeaseLost), but cannot be
// stopped either.
func WithLeaseTTL(ttl time.Duration) Option {
	return func(o *options) error {
		if ttl < 30*time.Millisecond {
			return invalid("lease TTL", "%v is below 30ms", ttl)
		}
		o.leaseTTL = ttl
		return nil
	}
}

// WithPollInterval sets how often a live subscription looks for new events
// when nothing wakes it (default 1s). The stores of this module wake it at
// once for appends they make or learn of; the poll is a safety net.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("poll interval", "%v is not positive", d)
		}
		o.poll = d
		return nil
	}
}

// WithCheckpointInterval sets how often the checkpoints not written by a
// handler's transaction are written: an at-least-once subscription's
// (made by New), and positions past events the filter skips or other
// members hold. The default is 1s; 0 writes them after every batch. A
// member that dies hands at most that much over again; one that stops
// (its context ends) writes them on its way out. A subscription made by
// NewTx writes its checkpoint with every batch, in the handler's
// transaction, whatever this says.
func WithCheckpointInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("checkpoint interval", "%v is negative", d)
		}
		o.checkpointEvery = d
		return nil
	}
}

func invalid(field, format string, args ...any) error {
	return &eventstore.ValidationError{Field: field, Index: -1, Reason: fmt.Sprintf(format, args...)}
}

func checkName(field, s string) error {
	if s == "" {
		return invalid(field, "empty")
	}
	if len(s) > MaxNameLen {
		return invalid(field, "%d bytes, more than %d", len(s), MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "%q holds a control character", s)
		}
	}
	return nil
}

func defaultMember() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "member"
	}
	if len(host) > 100 {
		host = host[:100]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomSuffix())
}
