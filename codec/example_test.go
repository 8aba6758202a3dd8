package codec_test

import (
	"errors"
	"fmt"

	"github.com/esv2/esv2/codec"
)

type AccountEvent interface{ isAccountEvent() }

type Opened struct{ Owner string }
type Deposited struct{ Amount int64 }

func (Opened) isAccountEvent()    {}
func (Deposited) isAccountEvent() {}

func Example() {
	reg := codec.New[AccountEvent]()
	if err := errors.Join(
		codec.Register[Opened](reg, "account.opened"),
		codec.Register[Deposited](reg, "account.deposited"),
	); err != nil {
		fmt.Println(err)
		return
	}

	typ, data, err := reg.Encode(Deposited{Amount: 50})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := reg.Decode(typ, data)
	if err != nil {
		fmt.Println(err)
		return
	}
	if d, ok := e.(Deposited); ok {
		fmt.Println(typ, "amount", d.Amount)
	}

	_, err = reg.Decode("account.closed", nil)
	fmt.Println(errors.Is(err, codec.ErrUnknownType), err)
	// Output:
	// account.deposited amount 50
	// true codec: decode type "account.closed": unknown event type
}

func ExampleUpcast() {
	// Version 1 stored credits in cents under another name.
	type CreditedV1 struct{ Cents int64 }

	old := codec.New[AccountEvent](codec.WithEncoding(codec.JSON{}))
	_ = codec.Register[CreditedV1Event](old, "account.credited")
	_, data, _ := old.Encode(CreditedV1Event{Cents: 250})

	reg := codec.New[AccountEvent](codec.WithEncoding(codec.JSON{}))
	err := errors.Join(
		codec.Register[Deposited](reg, "account.deposited"),
		codec.Upcast(reg, "account.credited", func(old CreditedV1) (AccountEvent, error) {
			return Deposited{Amount: old.Cents}, nil
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := reg.Decode("account.credited", data)
	fmt.Printf("%#v %v\n", e, err)
	// Output:
	// codec_test.Deposited{Amount:250} <nil>
}

// CreditedV1Event is the old shape as the old program registered it.
type CreditedV1Event struct{ Cents int64 }

func (CreditedV1Event) isAccountEvent() {}

func ExampleRegister_duplicate() {
	reg := codec.New[AccountEvent]()
	err := errors.Join(
		codec.Register[Deposited](reg, "account.deposited"),
		codec.Register[Opened](reg, "account.deposited"),
	)
	fmt.Println(errors.Is(err, codec.ErrDuplicate))
	// Output:
	// true
}

func ExampleDecodeState() {
	type Account struct {
		Owner   string
		Balance int64
	}
	enc := codec.Msgpack{}
	data, err := codec.EncodeState(enc, Account{Owner: "alice", Balance: 70})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := codec.DecodeState[Account](enc, data)
	fmt.Printf("%+v %v\n", s, err)
	// Output:
	// {Owner:alice Balance:70} <nil>
}
