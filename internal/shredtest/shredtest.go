// Package shredtest proves crypto-shredding and command-ID hashing on a
// real store (issue 12): personal data and command IDs never reach the
// database in plain text, and after a subject is forgotten and the
// documented housekeeping has run, the subject's key is gone from the
// database at rest, while an aggregate with forgotten fields still loads
// (from events and from a snapshot) and a subscription still runs over
// those events. Each adapter's tests run it with its own way of reading
// the database at rest.
package shredtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// Target is a store under test and how to look at its database at rest.
type Target[Tx any] struct {
	// Store is the store; its events go through Keys.
	Store subscription.Store[Tx]
	// Keys is the store's key store.
	Keys codec.KeyStore
	// Dump returns the database's bytes at rest: its files, or a binary
	// dump of its tables.
	Dump func(t *testing.T) []byte
	// Housekeeping runs the steps the adapter's documentation tells users
	// to run after forgetting a subject.
	Housekeeping func(t *testing.T)
}

// CustomerEvent is the event type of the customer aggregate of the test.
type CustomerEvent interface{ isCustomerEvent() }

// Registered holds the customer's e-mail address, personal data.
type Registered struct {
	Email codec.Personal[string]
	Plan  string
}

// Moved holds the customer's new address, personal data.
type Moved struct{ Address codec.Personal[string] }

func (Registered) isCustomerEvent() {}
func (Moved) isCustomerEvent()      {}

// Customer is the state of the customer aggregate, snapshotted with its
// personal fields.
type Customer struct {
	Email   codec.Personal[string]
	Address codec.Personal[string]
	Plan    string
	Moves   int
}

func evolve(c Customer, e CustomerEvent) Customer {
	switch e := e.(type) {
	case Registered:
		c.Email, c.Plan = e.Email, e.Plan
	case Moved:
		c.Address = e.Address
		c.Moves++
	}
	return c
}

func unique(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Run runs the scenario on tg.
func Run[Tx any](t *testing.T, tg Target[Tx]) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var (
		subject    = unique("subject-")
		email      = unique("EMAIL-MARKER-") + "@example.com"
		address    = unique("ADDRESS-MARKER-")
		cmdID      = unique("COMMAND-ID-MARKER-")
		control    = unique("CONTROL-MARKER-") // not personal: must be found
		customerID = "customer-1"
	)
	reg := codec.New[CustomerEvent](codec.WithKeyStore(tg.Keys))
	if err := errors.Join(
		codec.Register[Registered](reg, "customer.registered"),
		codec.Register[Moved](reg, "customer.moved"),
	); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository(tg.Store, aggregate.Config[Customer, CustomerEvent]{
		Evolve: evolve, Codec: reg, SnapshotEvery: 2, SnapshotSchema: "customer.v1",
		OnSnapshotError: func(_ context.Context, stream string, err error) { t.Errorf("snapshot of %s: %v", stream, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	register := func(Customer) ([]CustomerEvent, error) {
		return []CustomerEvent{Registered{Email: codec.NewPersonal(subject, email), Plan: control}}, nil
	}
	for i := range 2 { // the second is a retry: a no-op
		a, err := repo.Update(ctx, customerID, register, aggregate.WithCommandID(cmdID))
		if err != nil {
			t.Fatalf("register, attempt %d: %v", i+1, err)
		}
		if a.Version() != 1 {
			t.Fatalf("register, attempt %d: version %d, want 1 (a retried command is a no-op)", i+1, a.Version())
		}
	}
	a, err := repo.Update(ctx, customerID, func(Customer) ([]CustomerEvent, error) {
		return []CustomerEvent{Moved{Address: codec.NewPersonal(subject, address)}}, nil
	}, aggregate.WithCommandID(cmdID+"-move"))
	if err != nil {
		t.Fatal(err)
	}
	if a.State().Email.Value() != email || a.State().Address.Value() != address {
		t.Fatalf("state before Forget: %v %v", a.State().Email, a.State().Address)
	}
	snap, err := tg.Store.LoadSnapshot(ctx, customerID, eventstore.DefaultSnapshotName)
	if err != nil || snap.Version != 2 {
		t.Fatalf("snapshot at version 2: %+v, %v", snap, err)
	}
	key, err := tg.Keys.Key(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}

	// At rest: the personal data and the command ID are nowhere, while a
	// plain field is (so the scan can find what is there), and so is the
	// key.
	before := tg.Dump(t)
	for what, s := range map[string]string{"e-mail (personal)": email, "address (personal)": address, "command ID": cmdID} {
		if bytes.Contains(before, []byte(s)) {
			t.Errorf("the %s %q is stored in plain text", what, s)
		}
	}
	if !bytes.Contains(before, []byte(control)) {
		t.Fatalf("the scan does not find the plain field %q: it cannot prove anything", control)
	}
	if !bytes.Contains(before, key) {
		t.Fatalf("the scan does not find the subject's key before Forget: it cannot prove it is gone after")
	}

	if err := tg.Keys.Forget(ctx, subject); err != nil {
		t.Fatal(err)
	}
	tg.Housekeeping(t)
	after := tg.Dump(t)
	if bytes.Contains(after, key) {
		t.Error("the subject's key is still in the database after Forget and the housekeeping")
	}
	for what, s := range map[string]string{"e-mail": email, "address": address, "command ID": cmdID} {
		if bytes.Contains(after, []byte(s)) {
			t.Errorf("the %s %q is in the database after Forget", what, s)
		}
	}

	// The aggregate still loads, from its snapshot and from its events,
	// with its personal fields redacted and the rest intact.
	state, err := codec.DecodeStateContext[Customer](ctx, reg.Encoding(), snap.Data)
	if err != nil {
		t.Fatalf("snapshot after Forget: %v", err)
	}
	checkRedacted(t, "snapshot", state, subject, control, 1)
	fromEvents, err := aggregate.NewRepository(tg.Store, aggregate.Config[Customer, CustomerEvent]{Evolve: evolve, Codec: reg})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*aggregate.Repository[Customer, CustomerEvent]{"with snapshots": repo, "from events": fromEvents} {
		a, err := r.Load(ctx, customerID)
		if err != nil {
			t.Fatalf("load %s after Forget: %v", name, err)
		}
		checkRedacted(t, "load "+name, a.State(), subject, control, 1)
		if want := map[bool]uint64{true: 2, false: 0}[r == repo]; a.SnapshotVersion() != want {
			t.Errorf("load %s: started from the snapshot at version %d, want %d", name, a.SnapshotVersion(), want)
		}
	}
	// A command after Forget still works on the redacted aggregate.
	if _, err := repo.Update(ctx, customerID, func(c Customer) ([]CustomerEvent, error) {
		if !c.Email.Redacted() {
			return nil, fmt.Errorf("decide saw %v, want it redacted", c.Email)
		}
		return []CustomerEvent{Moved{}}, nil
	}); err != nil {
		t.Fatalf("update after Forget: %v", err)
	}

	// A subscription decodes every event, redacted, and keeps running.
	router, err := codec.NewRouter(reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []any
	sub, err := subscription.New(tg.Store, unique("customers-"), func(ctx context.Context, events []eventstore.Recorded) error {
		for _, rec := range events {
			ev, err := router.DecodeContext(ctx, rec)
			if err != nil {
				return err
			}
			mu.Lock()
			seen = append(seen, ev)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	head, err := tg.Store.Info(ctx, customerID)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	waitErr := make(chan error, 1)
	go func() { waitErr <- sub.WaitFor(runCtx, head.Position) }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("subscription: %v", err)
		}
	case err := <-done:
		t.Fatalf("the subscription stopped before handling the events: %v", err)
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("the subscription handled %d events, want 3", len(seen))
	}
	r, ok := seen[0].(Registered)
	if !ok || !r.Email.Redacted() || r.Plan != control {
		t.Errorf("the subscription's first event: %+v, want Registered with a redacted e-mail", seen[0])
	}
	if m, ok := seen[1].(Moved); !ok || !m.Address.Redacted() {
		t.Errorf("the subscription's second event: %+v, want Moved with a redacted address", seen[1])
	}
}

func checkRedacted(t *testing.T, what string, c Customer, subject, plan string, moves int) {
	t.Helper()
	if !c.Email.Redacted() || c.Email.Value() != "" || c.Email.Subject() != subject {
		t.Errorf("%s: e-mail %v (value %q), want redacted", what, c.Email, c.Email.Value())
	}
	if !c.Address.Redacted() || c.Address.Value() != "" {
		t.Errorf("%s: address %v (value %q), want redacted", what, c.Address, c.Address.Value())
	}
	if c.Plan != plan || c.Moves != moves {
		t.Errorf("%s: plan %q moves %d, want %q and %d: what is not personal must stay", what, c.Plan, c.Moves, plan, moves)
	}
}
