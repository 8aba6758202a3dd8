package aggregate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

type Account struct {
	Owner   string
	Balance int64
}

type AccountEvent interface{ isAccountEvent() }

type Opened struct{ Owner string }
type Deposited struct{ Amount int64 }
type Withdrawn struct{ Amount int64 }

func (Opened) isAccountEvent()    {}
func (Deposited) isAccountEvent() {}
func (Withdrawn) isAccountEvent() {}

func evolveAccount(a Account, e AccountEvent) Account {
	switch e := e.(type) {
	case Opened:
		a.Owner = e.Owner
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	}
	return a
}

var ErrInsufficientFunds = errors.New("insufficient funds")

func withdraw(amount int64) func(Account) ([]AccountEvent, error) {
	return func(a Account) ([]AccountEvent, error) {
		if a.Balance < amount {
			return nil, fmt.Errorf("withdraw %d from %d: %w", amount, a.Balance, ErrInsufficientFunds)
		}
		return []AccountEvent{Withdrawn{Amount: amount}}, nil
	}
}

// accounts opens an in-memory store and a repository of accounts.
func accounts(ctx context.Context) (*sqlite.Store, *aggregate.Repository[Account, AccountEvent], error) {
	events := codec.New[AccountEvent]()
	if err := errors.Join(
		codec.Register[Opened](events, "account.opened"),
		codec.Register[Deposited](events, "account.deposited"),
		codec.Register[Withdrawn](events, "account.withdrawn"),
	); err != nil {
		return nil, nil, err
	}
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		return nil, nil, err
	}
	repo, err := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{
		Evolve:         evolveAccount,
		Codec:          events,
		SnapshotEvery:  100,
		SnapshotSchema: "account-v1",
	})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, repo, nil
}

func Example() {
	ctx := context.Background()
	store, repo, err := accounts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	acc, err := repo.Load(ctx, "account-42")
	if err != nil {
		fmt.Println(err)
		return
	}
	acc.Record(Opened{Owner: "alice"}, Deposited{Amount: 100})
	if err := repo.Save(ctx, acc); err != nil {
		fmt.Println(err)
		return
	}

	again, err := repo.Load(ctx, "account-42")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v at version %d\n", again.State(), again.Version())
	// Output:
	// {Owner:alice Balance:100} at version 2
}

func ExampleRepository_Update() {
	ctx := context.Background()
	store, repo, err := accounts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	deposit := func(Account) ([]AccountEvent, error) { return []AccountEvent{Deposited{Amount: 30}}, nil }
	if _, err := repo.Update(ctx, "account-7", deposit); err != nil {
		fmt.Println(err)
		return
	}
	acc, err := repo.Update(ctx, "account-7", withdraw(20))
	fmt.Println(acc.State().Balance, err)

	_, err = repo.Update(ctx, "account-7", withdraw(20))
	fmt.Println(errors.Is(err, ErrInsufficientFunds), err)
	// Output:
	// 10 <nil>
	// true aggregate: update "account-7": withdraw 20 from 10: insufficient funds
}

func ExampleWithCommandID() {
	ctx := context.Background()
	store, repo, err := accounts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	deposit := func(Account) ([]AccountEvent, error) { return []AccountEvent{Deposited{Amount: 50}}, nil }
	// A client sends the same request twice (say, after a timeout).
	for range 2 {
		acc, err := repo.Update(ctx, "account-9", deposit, aggregate.WithCommandID("request-1"))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("balance", acc.State().Balance, "version", acc.Version())
	}
	// Output:
	// balance 50 version 1
	// balance 50 version 1
}

func ExampleRepository_Save_conflict() {
	ctx := context.Background()
	store, repo, err := accounts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	first, _ := repo.Load(ctx, "account-1")
	second, _ := repo.Load(ctx, "account-1")
	first.Record(Deposited{Amount: 1})
	second.Record(Deposited{Amount: 2})
	fmt.Println(repo.Save(ctx, first))
	err = repo.Save(ctx, second)
	fmt.Println(errors.Is(err, eventstore.ErrConcurrency))
	// Output:
	// <nil>
	// true
}

// An HTTP handler answers 404 for an aggregate that was never created:
// LoadExisting (or Update with MustExist) says so with ErrNotFound.
func ExampleRepository_LoadExisting() {
	ctx := context.Background()
	store, repo, err := accounts(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	_, err = repo.LoadExisting(ctx, "account-404")
	fmt.Println(errors.Is(err, aggregate.ErrNotFound))

	acc, err := repo.Update(ctx, "account-7", func(Account) ([]AccountEvent, error) {
		return []AccountEvent{Opened{Owner: "bob"}}, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Position is where the events went: wait for a read model to reach
	// it (subscription.Subscription.WaitFor) to read your own write.
	fmt.Println(acc.Version(), acc.Position() > 0)
	// Output:
	// true
	// 1 true
}
