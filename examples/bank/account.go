package main

import (
	"errors"
	"fmt"

	"github.com/esv2/esv2/codec"
)

// Account is the state of one bank account, folded from its events.
type Account struct {
	Owner   string
	Open    bool
	Balance int64
}

// AccountEvent is any event of an account. The unexported method seals the
// interface: only this package's event types implement it.
type AccountEvent interface{ isAccountEvent() }

// The events of an account.
type (
	Opened       struct{ Owner string }
	Deposited    struct{ Amount int64 }
	Withdrawn    struct{ Amount int64 }
	TransferSent struct {
		To     string
		Amount int64
	}
	TransferReceived struct {
		From   string
		Amount int64
	}
)

func (Opened) isAccountEvent()           {}
func (Deposited) isAccountEvent()        {}
func (Withdrawn) isAccountEvent()        {}
func (TransferSent) isAccountEvent()     {}
func (TransferReceived) isAccountEvent() {}

// newCodec registers every event type under the name it is stored as.
func newCodec() (*codec.Registry[AccountEvent], error) {
	reg := codec.New[AccountEvent]()
	return reg, errors.Join(
		codec.Register[Opened](reg, "account.opened"),
		codec.Register[Deposited](reg, "account.deposited"),
		codec.Register[Withdrawn](reg, "account.withdrawn"),
		codec.Register[TransferSent](reg, "account.transfer-sent"),
		codec.Register[TransferReceived](reg, "account.transfer-received"),
	)
}

// evolve folds one event into an account. It is pure: no I/O, no checks;
// the decisions below check, the events record what was decided.
func evolve(a Account, e AccountEvent) Account {
	switch e := e.(type) {
	case Opened:
		a.Owner, a.Open = e.Owner, true
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	case TransferSent:
		a.Balance -= e.Amount
	case TransferReceived:
		a.Balance += e.Amount
	}
	return a
}

// Errors of the decisions.
var (
	ErrAlreadyOpen       = errors.New("account already open")
	ErrNotOpen           = errors.New("account not open")
	ErrBadAmount         = errors.New("amount must be positive")
	ErrInsufficientFunds = errors.New("insufficient funds")
)

// decision is what repo.Update runs: given the current state, the events
// to store, or an error to refuse the command.
type decision = func(Account) ([]AccountEvent, error)

func open(owner string) decision {
	return func(a Account) ([]AccountEvent, error) {
		if a.Open {
			return nil, ErrAlreadyOpen
		}
		return []AccountEvent{Opened{Owner: owner}}, nil
	}
}

func deposit(amount int64) decision {
	return func(a Account) ([]AccountEvent, error) {
		if err := usable(a, amount); err != nil {
			return nil, err
		}
		return []AccountEvent{Deposited{Amount: amount}}, nil
	}
}

// withdraw enforces the bank's invariant: no overdraft.
func withdraw(amount int64) decision {
	return func(a Account) ([]AccountEvent, error) {
		if err := covered(a, amount); err != nil {
			return nil, err
		}
		return []AccountEvent{Withdrawn{Amount: amount}}, nil
	}
}

func sendTransfer(to string, amount int64) decision {
	return func(a Account) ([]AccountEvent, error) {
		if err := covered(a, amount); err != nil {
			return nil, err
		}
		return []AccountEvent{TransferSent{To: to, Amount: amount}}, nil
	}
}

func receiveTransfer(from string, amount int64) decision {
	return func(a Account) ([]AccountEvent, error) {
		if err := usable(a, amount); err != nil {
			return nil, err
		}
		return []AccountEvent{TransferReceived{From: from, Amount: amount}}, nil
	}
}

func usable(a Account, amount int64) error {
	if !a.Open {
		return ErrNotOpen
	}
	if amount <= 0 {
		return fmt.Errorf("%d: %w", amount, ErrBadAmount)
	}
	return nil
}

func covered(a Account, amount int64) error {
	if err := usable(a, amount); err != nil {
		return err
	}
	if a.Balance < amount {
		return fmt.Errorf("balance %d, asked %d: %w", a.Balance, amount, ErrInsufficientFunds)
	}
	return nil
}
