package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// The environment of a consumer child process (see consumerMain).
const (
	envConsumerDB     = "ESV2_BANK_CONSUMER_DB"
	envConsumerMember = "ESV2_BANK_CONSUMER_MEMBER"
	envConsumerBatch  = "ESV2_BANK_CONSUMER_BATCH"
)

// childLeaseTTL is short so that a restarted consumer under a new member
// name takes the partition over from a killed one within seconds, and
// long enough for a batch's commit on a loaded machine under the race
// detector (a member renews every third of it).
const childLeaseTTL = time.Second

// consumerMain is the test binary run as the read model's consumer on the
// SQLite file $ESV2_BANK_CONSUMER_DB, until SIGTERM (or SIGKILL). It
// returns the process's exit code.
func consumerMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := consume(ctx, os.Getenv(envConsumerDB), os.Getenv(envConsumerMember), os.Getenv(envConsumerBatch)); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		return 1
	}
	return 0
}

func consume(ctx context.Context, path, member, batch string) (err error) {
	n, err := strconv.Atoi(batch)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	events, err := newCodec()
	if err != nil {
		return err
	}
	router, err := codec.NewRouter(events)
	if err != nil {
		return err
	}
	sub, err := newBalances(store, router, subscription.WithMember(member),
		subscription.WithLeaseTTL(childLeaseTTL), subscription.WithBatchSize(n))
	if err != nil {
		return err
	}
	return sub.Run(ctx)
}

// child is a running consumer process.
type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's error, once done is closed
}

func startConsumer(t *testing.T, path, member string, batch int) *child {
	t.Helper()
	c := &child{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(),
		envConsumerDB+"="+path, envConsumerMember+"="+member, envConsumerBatch+"="+strconv.Itoa(batch))
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		c.err = c.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// kill SIGKILLs the consumer, which must still be running.
func (c *child) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		t.Fatalf("consumer exited before it was killed: %v\n%s", c.err, c.stderr.String())
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// TestReadModelSurvivesKills runs the read model's consumer as a child
// process on a SQLite file, SIGKILLs it at random moments (mid-batch,
// mid-commit, while starting) as deposits and withdrawals are appended,
// restarts it, sometimes under the same member name (which reclaims its
// lease at once) and sometimes under a new one (which takes the partition
// over when the lease ends). The table must in the end hold exactly the
// balances recomputed from all events: none counted twice, none missed.
func TestReadModelSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes; skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	path := filepath.Join(t.TempDir(), "bank.db")
	ctx := t.Context()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	repo := newRepo(t, store)
	accounts := []string{"account-a", "account-b", "account-c", "account-d", "account-e"}
	for _, id := range accounts {
		if _, err := repo.Update(ctx, id, open(id)); err != nil {
			t.Fatal(err)
		}
	}

	// The appends go on until the kills are over, and number at least
	// minCommands. Each stores a few events, so that the consumers have a
	// backlog to work through when they die.
	const minCommands = 100
	var g errgroup.Group
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	commands, events := 0, 0
	g.Go(func() error {
		// Its own generator: rng belongs to the test's goroutine.
		r := rand.New(rand.NewPCG(seed, seed+1))
		for ; commands < minCommands || !closed(stop); commands++ {
			n := 1 + r.IntN(8)
			if err := moneyBurst(ctx, repo, accounts[r.IntN(len(accounts))], r, n); err != nil {
				return err
			}
			events += n
		}
		return nil
	})
	defer func() { halt(); _ = g.Wait() }() // on a t.Fatal below

	const kills = 12
	advanced := 0
	for round := range kills {
		// The name changes every fourth round: the same name reclaims
		// its lease at once, a new one waits for it to end.
		member := fmt.Sprintf("consumer-%d", round/4)
		before := checkpoint(t, store)
		c := startConsumer(t, path, member, 1+rng.IntN(5))
		// Every third consumer dies wherever it is in starting up; the
		// others once they have committed a batch (a time would not do:
		// how long a start takes varies tenfold with the machine's load
		// and the race detector), and then at a random moment: sleeping
		// is the point here, not a way to wait for something.
		if round%3 != 2 {
			waitForProgress(t, store, before)
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		c.kill(t)
		if checkpoint(t, store) > before {
			advanced++
		}
	}
	halt()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills, %d commands, %d events; the checkpoint advanced under %d of the killed consumers", kills, commands, events, advanced)
	if advanced == 0 {
		t.Fatal("no killed consumer moved the checkpoint: the kills tested nothing")
	}

	// A last consumer catches up, under a new name: it must wait for the
	// killed one's lease to end.
	last := startConsumer(t, path, "consumer-last", 50)
	head := waitForLag0(t, store)
	if err := last.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-last.done
	if last.err != nil {
		t.Fatalf("consumer stopped with %v\n%s", last.err, last.stderr.String())
	}

	want := recompute(t, store)
	if diff := cmp.Diff(want, tableOf(t, path)); diff != "" {
		t.Errorf("balances table against the recomputation (-want +got):\n%s", diff)
	}
	if got := len(accounts) + events; head != uint64(got) {
		t.Errorf("head %d, want %d events", head, got)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// checkpoint returns the read model's stored position, 0 before it is
// registered.
func checkpoint(t *testing.T, store *sqlite.Store) uint64 {
	t.Helper()
	subs, err := subscription.List(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) == 0 {
		return 0
	}
	return subs[0].Position
}

// waitForProgress waits until the read model's stored position has moved
// past before, or reached the head.
func waitForProgress(t *testing.T, store *sqlite.Store, before uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		subs, err := subscription.List(t.Context(), store)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) == 1 && (subs[0].Position > before || subs[0].Lag == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read model stuck at %d for 30s: %+v", before, subs)
		}
		time.Sleep(10 * time.Millisecond) // polls the stored checkpoint, which another process writes
	}
}

// waitForLag0 waits until the stored checkpoint of the read model is at
// the head, and returns the head.
func waitForLag0(t *testing.T, store *sqlite.Store) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		subs, err := subscription.List(t.Context(), store)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) == 1 && subs[0].Lag == 0 && subs[0].Head > 0 {
			if subs[0].Parked != 0 || subs[0].Name != balancesSub {
				t.Fatalf("subscriptions: %+v", subs)
			}
			return subs[0].Head
		}
		if time.Now().After(deadline) {
			t.Fatalf("read model not caught up after 30s: %+v", subs)
		}
		time.Sleep(20 * time.Millisecond) // polls the stored checkpoint, which another process writes
	}
}

// TestReadModel runs the read model in this process on an in-memory
// store: it catches up, follows appends, and after a restart resumes from
// its checkpoint, handing over only the events appended since.
func TestReadModel(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	repo := newRepo(t, store)
	rng := rand.New(rand.NewPCG(1, 2))
	accounts := []string{"account-x", "account-y", "account-z"}
	for _, id := range accounts {
		if _, err := repo.Update(ctx, id, open(id)); err != nil {
			t.Fatal(err)
		}
	}
	commands := func(n int) {
		t.Helper()
		for range n {
			if err := moneyCommand(ctx, repo, accounts[rng.IntN(len(accounts))], 1+rng.Int64N(50), rng.IntN(3) == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	commands(40) // before it starts: catching up

	events, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	router, err := codec.NewRouter(events)
	if err != nil {
		t.Fatal(err)
	}
	check := func(m *readModel) {
		t.Helper()
		head := headOf(t, store)
		if err := m.waitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		got, err := queryBalances(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(recompute(t, store), got); diff != "" {
			t.Errorf("balances table against the recomputation (-want +got):\n%s", diff)
		}
	}

	m, err := startReadModel(ctx, store, router, subscription.WithBatchSize(7))
	if err != nil {
		t.Fatal(err)
	}
	check(m)
	commands(20) // live
	check(m)
	if got, want := m.sub.Status().Delivered, headOf(t, store); got != want {
		t.Errorf("delivered %d events, want %d", got, want)
	}
	if err := m.close(); err != nil {
		t.Fatal(err)
	}

	before := headOf(t, store)
	commands(15) // while it is stopped
	m, err = startReadModel(ctx, store, router)
	if err != nil {
		t.Fatal(err)
	}
	check(m)
	if got, want := m.sub.Status().Delivered, headOf(t, store)-before; got != want {
		t.Errorf("after the restart: delivered %d events, want only the %d appended since", got, want)
	}
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadModelStopsOnUnknownEvent: an event the codec does not know is
// the handler's error, never skipped; under the default Stop policy Run
// ends with a *subscription.HandlerError and the table keeps what came
// before it.
func TestReadModelStopsOnUnknownEvent(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	repo := newRepo(t, store)
	if _, err := repo.Update(ctx, "account-x", open("x")); err != nil {
		t.Fatal(err)
	}
	if err := moneyCommand(ctx, repo, "account-x", 10, false); err != nil {
		t.Fatal(err)
	}
	res, err := store.Append(ctx, "account-x", eventstore.Any, eventstore.Event{Type: "account.frozen"})
	if err != nil {
		t.Fatal(err)
	}
	events, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	router, err := codec.NewRouter(events)
	if err != nil {
		t.Fatal(err)
	}
	m, err := startReadModel(ctx, store, router, subscription.WithRetries(1, 0, 0), subscription.WithBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	err = m.waitFor(ctx, res.Position)
	var he *subscription.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, codec.ErrUnknownType) || he.First != res.Position {
		t.Fatalf("waitFor: %v, want a HandlerError at position %d wrapping codec.ErrUnknownType", err, res.Position)
	}
	got, err := queryBalances(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]balance{{"account-x", 10, 2}}, got); diff != "" {
		t.Errorf("balances (-want +got):\n%s", diff)
	}
	subs, err := subscription.List(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].Position != res.Position-1 {
		t.Errorf("subscriptions %+v, want the checkpoint at %d, before the unknown event", subs, res.Position-1)
	}
}

func newRepo(t *testing.T, store eventstore.Store) *aggregate.Repository[Account, AccountEvent] {
	t.Helper()
	events, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{Evolve: evolve, Codec: events})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// moneyBurst stores n deposits and withdrawals of account in one command,
// a withdrawal only where the balance covers it.
func moneyBurst(ctx context.Context, repo *aggregate.Repository[Account, AccountEvent], account string, r *rand.Rand, n int) error {
	// Drawn before: Update may decide more than once.
	amounts, withdrawals := make([]int64, n), make([]bool, n)
	for i := range n {
		amounts[i], withdrawals[i] = 1+r.Int64N(50), r.IntN(3) == 0
	}
	_, err := repo.Update(ctx, account, func(a Account) ([]AccountEvent, error) {
		var out []AccountEvent
		for i := range n {
			var e AccountEvent = Deposited{Amount: amounts[i]}
			if withdrawals[i] && a.Balance >= amounts[i] {
				e = Withdrawn{Amount: amounts[i]}
			}
			a = evolve(a, e)
			out = append(out, e)
		}
		return out, nil
	})
	return err
}

// moneyCommand withdraws amount from account when it asks to and the
// balance covers it, and deposits it otherwise.
func moneyCommand(ctx context.Context, repo *aggregate.Repository[Account, AccountEvent], account string, amount int64, withdrawal bool) error {
	_, err := repo.Update(ctx, account, func(a Account) ([]AccountEvent, error) {
		if withdrawal && a.Balance >= amount {
			return withdraw(amount)(a)
		}
		return deposit(amount)(a)
	})
	return err
}

func headOf(t *testing.T, store eventstore.Store) uint64 {
	t.Helper()
	info, err := store.Info(t.Context(), eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	return info.Position
}

// recompute folds every stored event into the balances the read model
// should hold, without the read model's code.
func recompute(t *testing.T, store eventstore.Store) []balance {
	t.Helper()
	events, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]Account{}
	versions := map[string]uint64{}
	for rec, err := range store.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.DecodeRecorded(&rec)
		if err != nil {
			t.Fatal(err)
		}
		accounts[rec.StreamID] = evolve(accounts[rec.StreamID], e)
		versions[rec.StreamID] = rec.Version
	}
	var out []balance
	for id, a := range accounts {
		out = append(out, balance{Account: id, Balance: a.Balance, Version: int64(versions[id])})
	}
	slices.SortFunc(out, func(a, b balance) int { return strings.Compare(a.Account, b.Account) })
	return out
}

// tableOf reads the balances table of the SQLite file at path with
// database/sql, as another process would.
func tableOf(t *testing.T, path string) []balance {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT account, balance, version FROM balances ORDER BY account`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []balance
	for rows.Next() {
		var b balance
		if err := rows.Scan(&b.Account, &b.Balance, &b.Version); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
