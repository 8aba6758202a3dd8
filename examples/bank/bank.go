package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// snapshotEvery is small so that snapshots show up in a short run.
const snapshotEvery = 5

// bank runs the story: every step prints what it does, then waits until
// the watcher has printed the events the step stored, so the output is the
// same on every run.
type bank struct {
	store eventstore.Store
	repo  *aggregate.Repository[Account, AccountEvent]
	other *aggregate.Repository[Account, AccountEvent] // another instance's, for step 4
	out   *output
	watch *watcher
	rm    *readModel // nil on PostgreSQL
}

// output serialises the lines of the story and of the watcher.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *output) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, args...)
}

func run(ctx context.Context, w io.Writer, store eventstore.Store, where string) (err error) {
	if info, err := store.Info(ctx, eventstore.AllStreams); err != nil {
		return err
	} else if info.Count > 0 {
		return fmt.Errorf("the store already holds %d events: the bank needs a new database (a new -db file, or another -schema)", info.Count)
	}
	events, err := newCodec()
	if err != nil {
		return err
	}
	out := &output{w: w}
	cfg := aggregate.Config[Account, AccountEvent]{
		Evolve:         evolve,
		Codec:          events,
		SnapshotEvery:  snapshotEvery,
		SnapshotSchema: "account-v1",
		OnSnapshotError: func(_ context.Context, stream string, err error) {
			out.printf("  (snapshot of %s not used: %v)\n", stream, err)
		},
	}
	repo, err := aggregate.NewRepository(store, cfg)
	if err != nil {
		return err
	}
	// The Updates of one aggregate through one Repository take turns, so
	// only another Repository (another instance of the service, usually
	// another process) can make a save conflict: step 4's second teller
	// works through this one.
	other, err := aggregate.NewRepository(store, cfg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := &bank{store: store, repo: repo, other: other, out: out}
	b.watch = startWatcher(ctx, store, events, out)
	defer b.watch.stop(cancel)
	if s, ok := store.(*sqlite.Store); ok {
		var router *codec.Router
		if router, err = codec.NewRouter(events); err != nil {
			return err
		}
		if b.rm, err = startReadModel(ctx, s, router); err != nil {
			return err
		}
		// Run's error (a handler's, say) counts too.
		defer func() { err = errors.Join(err, b.rm.close()) }()
	}

	out.printf("esv2 bank example on %s.\n", where)
	out.printf("A watcher follows all streams (%s) and prints each event as it is stored:\n", eventstore.AllStreams)
	out.printf("  event <global position> <stream> v<version> <type> <data>\n")

	steps := []func(context.Context) error{
		b.openAccounts, b.deposits, b.overdraft, b.tellers, b.transfer, b.snapshots, b.balances, b.readModel,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// do runs one command and waits for the watcher to print what it stored.
func (b *bank) do(ctx context.Context, id string, decide decision, opts ...aggregate.CallOption) (*aggregate.Aggregate[Account, AccountEvent], error) {
	acc, err := b.repo.Update(ctx, id, decide, opts...)
	if err != nil {
		return nil, err
	}
	return acc, b.settle(ctx)
}

// settle waits until the watcher has printed every event stored so far.
func (b *bank) settle(ctx context.Context) error {
	info, err := b.store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return err
	}
	return b.watch.waitFor(ctx, info.Position)
}

func (b *bank) openAccounts(ctx context.Context) error {
	b.out.printf("\n1. Open three accounts.\n")
	for _, owner := range []string{"alice", "bob", "carol"} {
		if _, err := b.do(ctx, "account-"+owner, open(owner)); err != nil {
			return err
		}
	}
	return nil
}

func (b *bank) deposits(ctx context.Context) error {
	b.out.printf("\n2. Deposit: alice 100, bob 50, carol 100.\n")
	for _, d := range []struct {
		owner  string
		amount int64
	}{{"alice", 100}, {"bob", 50}, {"carol", 100}} {
		if _, err := b.do(ctx, "account-"+d.owner, deposit(d.amount)); err != nil {
			return err
		}
	}
	return nil
}

func (b *bank) overdraft(ctx context.Context) error {
	b.out.printf("\n3. Bob tries to withdraw 80 with 50 in his account.\n")
	_, err := b.do(ctx, "account-bob", withdraw(80))
	switch {
	case err == nil:
		return errors.New("overdraft not refused: the withdrawal succeeded")
	case !errors.Is(err, ErrInsufficientFunds):
		return fmt.Errorf("overdraft not refused: %w", err)
	}
	b.out.printf("  refused by the decide function (%v); nothing stored.\n", err)
	return b.settle(ctx)
}

// tellers has two tellers, in two instances of the service (two
// Repositories), update carol's account at the same moment. Both load
// version 2; teller 1 saves first, so teller 2's save meets a
// concurrency conflict, and Update loads the account again, decides again
// and saves. The channels only pin down who saves first, so that every run
// tells the same story.
func (b *bank) tellers(ctx context.Context) error {
	b.out.printf("\n4. Two tellers, in two instances of the service, serve carol at once: teller 1 deposits 40,\n   teller 2 withdraws 25.\n")
	loaded1, loaded2, saved1 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	wait := func(ch <-chan struct{}) error {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var decisions1, decisions2 int
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(saved1)
		_, err1 = b.repo.Update(ctx, "account-carol", func(a Account) ([]AccountEvent, error) {
			decisions1++
			if decisions1 == 1 {
				close(loaded1)
				if err := wait(loaded2); err != nil { // both have loaded the same version
					return nil, err
				}
			}
			return deposit(40)(a)
		})
	}()
	go func() {
		defer wg.Done()
		_, err2 = b.other.Update(ctx, "account-carol", func(a Account) ([]AccountEvent, error) {
			decisions2++
			if decisions2 == 1 {
				if err := wait(loaded1); err != nil {
					return nil, err
				}
				close(loaded2)
				if err := wait(saved1); err != nil { // teller 1 saves first
					return nil, err
				}
			}
			return withdraw(25)(a)
		})
	}()
	wg.Wait()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := b.settle(ctx); err != nil {
		return err
	}
	b.out.printf("  teller 1 decided once and saved first.\n")
	b.out.printf("  teller 2 decided %d times: its first save hit a concurrency conflict (teller 1 had\n", decisions2)
	b.out.printf("  saved since it loaded), so Update loaded the account again, decided again, and won.\n")
	return nil
}

// transfer moves money between two streams with one command ID: if the
// client retries (a timeout, a crash between the two legs), the legs
// already stored are not stored again.
func (b *bank) transfer(ctx context.Context) error {
	b.out.printf("\n5. Transfer 30 from alice to bob (command transfer-1), then retry it as a client would after a timeout.\n")
	for attempt := 1; attempt <= 2; attempt++ {
		cmd := aggregate.WithCommandID("transfer-1")
		from, err := b.do(ctx, "account-alice", sendTransfer("account-bob", 30), cmd)
		if err != nil {
			return err
		}
		to, err := b.do(ctx, "account-bob", receiveTransfer("account-alice", 30), cmd)
		if err != nil {
			return err
		}
		b.out.printf("  attempt %d: alice %d (v%d), bob %d (v%d)\n", attempt,
			from.State().Balance, from.Version(), to.State().Balance, to.Version())
	}
	b.out.printf("  the retry stored nothing: the command was already applied.\n")
	return nil
}

func (b *bank) snapshots(ctx context.Context) error {
	b.out.printf("\n6. Snapshots: when a save takes an account past a multiple of %d events, its state is saved too.\n   Alice makes 4 deposits of 5.\n", snapshotEvery)
	for range 4 {
		if _, err := b.do(ctx, "account-alice", deposit(5)); err != nil {
			return err
		}
	}
	snap, err := b.store.LoadSnapshot(ctx, "account-alice", eventstore.DefaultSnapshotName)
	if err != nil {
		return err
	}
	acc, err := b.repo.Load(ctx, "account-alice")
	if err != nil {
		return err
	}
	b.out.printf("  the latest snapshot of account-alice is at version %d (schema %s);\n", snap.Version, snap.Schema)
	b.out.printf("  loading alice starts from it and folds %d more event(s): version %d, balance %d.\n",
		acc.Version()-acc.SnapshotVersion(), acc.Version(), acc.State().Balance)
	return nil
}

func (b *bank) balances(ctx context.Context) error {
	b.out.printf("\nFinal balances:\n")
	for _, owner := range []string{"alice", "bob", "carol"} {
		acc, err := b.repo.Load(ctx, "account-"+owner)
		if err != nil {
			return err
		}
		b.out.printf("  %-6s %4d  (version %d)\n", owner, acc.State().Balance, acc.Version())
	}
	info, err := b.store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return err
	}
	b.out.printf("%d events stored in all.\n", info.Count)
	return nil
}

// readModel shows the read model: it waits until the subscription has
// handled every event stored, then prints the table it keeps.
func (b *bank) readModel(ctx context.Context) error {
	if b.rm == nil {
		b.out.printf("\n(The read model of the SQLite run, a balances table kept by a subscription, is not shown on PostgreSQL.)\n")
		return nil
	}
	info, err := b.store.Info(ctx, eventstore.AllStreams)
	if err != nil {
		return err
	}
	if err := b.rm.waitFor(ctx, info.Position); err != nil {
		return err
	}
	rows, err := queryBalances(ctx, b.rm.store)
	if err != nil {
		return err
	}
	b.out.printf("\nRead model: subscription %s keeps the table balances in the store's own database,\n", balancesSub)
	b.out.printf("writing it in the transaction that moves its checkpoint. Waited for position %d; the table:\n", info.Position)
	for _, r := range rows {
		b.out.printf("  %-13s %4d  (version %d)\n", r.Account, r.Balance, r.Version)
	}
	subs, err := subscription.List(ctx, b.rm.store)
	if err != nil {
		return err
	}
	for _, s := range subs {
		b.out.printf("subscription %s: checkpoint at position %d, lag %d.\n", s.Name, s.Position, s.Lag)
	}
	return nil
}

// watcher prints every event of every stream, from the first, as the
// store's Watch yields it.
type watcher struct {
	mu   sync.Mutex
	seen uint64        // global position of the last event printed
	tick chan struct{} // closed and replaced whenever seen grows
	err  error         // why the watch ended early
	done chan struct{}
}

func startWatcher(ctx context.Context, store eventstore.Store, events *codec.Registry[AccountEvent], out *output) *watcher {
	w := &watcher{tick: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for rec, err := range store.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err == nil {
				var e AccountEvent
				if e, err = events.DecodeRecorded(&rec); err == nil {
					out.printf("  event %2d %-13s v%d %-25s %+v\n", rec.Position, rec.StreamID, rec.Version, rec.Type, e)
				}
			}
			w.mu.Lock()
			if err != nil {
				w.err = err
			} else {
				w.seen = rec.Position
			}
			close(w.tick)
			w.tick = make(chan struct{})
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return w
}

// waitFor waits until the watcher has printed the event at position pos.
func (w *watcher) waitFor(ctx context.Context, pos uint64) error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		seen, err, tick := w.seen, w.err, w.tick
		w.mu.Unlock()
		switch {
		case seen >= pos:
			return nil
		case err != nil:
			return fmt.Errorf("watcher: %w", err)
		}
		select {
		case <-tick:
		case <-deadline.C:
			return fmt.Errorf("watcher: position %d not seen after 10s (at %d)", pos, seen)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop ends the watch and waits for its goroutine.
func (w *watcher) stop(cancel context.CancelFunc) {
	cancel()
	<-w.done
}
