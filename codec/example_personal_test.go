package codec_test

import (
	"context"
	"fmt"
	"log"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

type CustomerEvent interface{ isCustomerEvent() }

// CustomerRegistered marks the e-mail address as the customer's personal
// data; the customer ID names the data subject.
type CustomerRegistered struct {
	CustomerID string
	Email      codec.Personal[string]
}

func (CustomerRegistered) isCustomerEvent() {}

// Personal data is encrypted with its subject's key, kept in the event
// store's own database; forgetting the subject deletes the key, and the
// events still decode, with the personal fields redacted.
func ExamplePersonal() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	keys := store.KeyStore()
	reg := codec.New[CustomerEvent](codec.WithKeyStore(keys))
	if err := codec.Register[CustomerRegistered](reg, "customer.registered"); err != nil {
		log.Fatal(err)
	}

	ev, err := reg.EventContext(ctx, CustomerRegistered{
		CustomerID: "cust-42",
		Email:      codec.NewPersonal("cust-42", "ann@example.com"),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, "customer-42", eventstore.NoStream, ev); err != nil {
		log.Fatal(err)
	}

	show := func() {
		for rec, err := range store.Read(ctx, "customer-42", eventstore.ReadOptions{}) {
			if err != nil {
				log.Fatal(err)
			}
			e, err := reg.DecodeRecordedContext(ctx, &rec)
			if err != nil {
				log.Fatal(err)
			}
			r := e.(CustomerRegistered)
			fmt.Printf("%s: email %q redacted=%v\n", r.CustomerID, r.Email.Value(), r.Email.Redacted())
		}
	}
	show()
	// The customer asks to be forgotten.
	if err := keys.Forget(ctx, "cust-42"); err != nil {
		log.Fatal(err)
	}
	show()
	// Output:
	// cust-42: email "ann@example.com" redacted=false
	// cust-42: email "" redacted=true
}
