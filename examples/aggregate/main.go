// Command aggregate defines a bank-account aggregate with esv2 and runs a
// few commands on it. The README shows this file; internal/readmetest keeps
// the two equal.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
)

// Account is the state: what the events add up to.
type Account struct {
	Balance int64
}

// AccountEvent is a sealed set of events: only this package's types have the method.
type AccountEvent interface{ isAccountEvent() }

type Deposited struct{ Amount int64 }
type Withdrawn struct{ Amount int64 }

func (Deposited) isAccountEvent() {}
func (Withdrawn) isAccountEvent() {}

// evolve folds one event into the state. It is pure: no I/O, no errors.
func evolve(a Account, e AccountEvent) Account {
	switch e := e.(type) {
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	}
	return a
}

var errInsufficientFunds = errors.New("insufficient funds")

// withdraw decides: it checks the invariant against the current state.
func withdraw(amount int64) func(Account) ([]AccountEvent, error) {
	return func(a Account) ([]AccountEvent, error) {
		if a.Balance < amount {
			return nil, errInsufficientFunds
		}
		return []AccountEvent{Withdrawn{Amount: amount}}, nil
	}
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	// Each event type is registered once, under a stable name.
	events := codec.New[AccountEvent]() // msgpack by default
	if err := errors.Join(
		codec.Register[Deposited](events, "account.deposited"),
		codec.Register[Withdrawn](events, "account.withdrawn"),
	); err != nil {
		return err
	}

	accounts, err := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{
		Evolve:         evolve,
		Codec:          events,
		SnapshotEvery:  100,
		SnapshotSchema: "account/v1",
	})
	if err != nil {
		return err
	}

	// Load, record, save: the save expects the version that was loaded.
	acc, err := accounts.Load(ctx, "account-42")
	if err != nil {
		return err
	}
	acc.Record(Deposited{Amount: 100})
	if err := accounts.Save(ctx, acc); err != nil {
		return err
	}

	// Update loads, decides and saves in one call, retrying on conflicts.
	acc, err = accounts.Update(ctx, "account-42", withdraw(30))
	if err != nil {
		return err
	}
	fmt.Println("balance", acc.State().Balance, "at version", acc.Version())

	_, err = accounts.Update(ctx, "account-42", withdraw(500))
	fmt.Println("withdraw 500:", errors.Is(err, errInsufficientFunds))
	return nil
}
