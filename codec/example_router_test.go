package codec_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// TransferEvent is a second aggregate's event type, for the Router examples.
type TransferEvent interface{ isTransferEvent() }

// Sent moves money between two accounts.
type Sent struct {
	From, To string
	Amount   int64
}

func (Sent) isTransferEvent() {}

// A read model of all streams decodes the events of two aggregates with one
// Router and handles them in a type switch: its cases are the Go types
// registered.
func ExampleRouter() {
	accounts := codec.New[AccountEvent]()
	transfers := codec.New[TransferEvent]()
	if err := errors.Join(
		codec.Register[Opened](accounts, "account.opened"),
		codec.Register[Deposited](accounts, "account.deposited"),
		codec.Register[Sent](transfers, "transfer.sent"),
	); err != nil {
		log.Fatal(err)
	}
	events, err := codec.NewRouter(accounts, transfers) // once, at start-up
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// What the aggregates' repositories would have appended.
	must := func(ev eventstore.Event, err error) eventstore.Event {
		if err != nil {
			log.Fatal(err)
		}
		return ev
	}
	for _, a := range []struct {
		stream string
		event  eventstore.Event
	}{
		{"account-1", must(accounts.Event(Opened{Owner: "ada"}))},
		{"account-1", must(accounts.Event(Deposited{Amount: 50}))},
		{"account-2", must(accounts.Event(Opened{Owner: "bob"}))},
		{"transfer-1", must(transfers.Event(Sent{From: "account-1", To: "account-2", Amount: 20}))},
	} {
		if _, err := store.Append(ctx, a.stream, eventstore.Any, a.event); err != nil {
			log.Fatal(err)
		}
	}

	balances := map[string]int64{}
	for rec, err := range store.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		ev, err := events.Decode(rec)
		if err != nil {
			log.Fatal(err) // an event the read model cannot read stops it: never skip one
		}
		switch ev := ev.(type) {
		case Opened:
			balances[rec.StreamID] = 0
		case Deposited:
			balances[rec.StreamID] += ev.Amount
		case Sent:
			balances[ev.From] -= ev.Amount
			balances[ev.To] += ev.Amount
		}
	}
	fmt.Println(balances)
	// Output:
	// map[account-1:30 account-2:20]
}

// An event whose type name no registry has is an error that says where it
// is, never a silent skip.
func ExampleRouter_Decode_unknownType() {
	accounts := codec.New[AccountEvent]()
	if err := codec.Register[Opened](accounts, "account.opened"); err != nil {
		log.Fatal(err)
	}
	events, err := codec.NewRouter(accounts)
	if err != nil {
		log.Fatal(err)
	}
	rec := eventstore.Recorded{
		Event:    eventstore.Event{Type: "account.closed"},
		StreamID: "account-1",
		Version:  7,
	}
	_, err = events.Decode(rec)
	fmt.Println(errors.Is(err, codec.ErrUnknownType))
	fmt.Println(err)
	// Output:
	// true
	// codec: decode stream "account-1" version 7 type "account.closed": unknown event type
}

// Two registries may not decode the same type name: the router could not
// tell whose event it is.
func ExampleNewRouter_duplicate() {
	accounts := codec.New[AccountEvent]()
	transfers := codec.New[TransferEvent]()
	if err := errors.Join(
		codec.Register[Deposited](accounts, "deposited"),
		codec.Register[Sent](transfers, "deposited"), // meant "transfer.sent"
	); err != nil {
		log.Fatal(err)
	}
	_, err := codec.NewRouter(accounts, transfers)
	fmt.Println(errors.Is(err, codec.ErrDuplicate))
	fmt.Println(err)
	// Output:
	// true
	// codec: router: type "deposited" is registered in both registry #1 (codec_test.AccountEvent) and registry #2 (codec_test.TransferEvent): codec: duplicate registration
}
