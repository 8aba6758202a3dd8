package subscription_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// appendOrders stores the events of two orders and returns the position of
// the last.
func appendOrders(ctx context.Context, store eventstore.Store) uint64 {
	if _, err := store.Append(ctx, "order-1", eventstore.NoStream,
		eventstore.Event{ID: "evt-1", Type: "order.placed"},
		eventstore.Event{ID: "evt-2", Type: "order.shipped"},
	); err != nil {
		log.Fatal(err)
	}
	res, err := store.Append(ctx, "order-2", eventstore.NoStream,
		eventstore.Event{ID: "evt-3", Type: "order.placed"})
	if err != nil {
		log.Fatal(err)
	}
	return res.Position
}

// A read model in the event store's own database: the handler writes
// through the transaction in which the subscription writes its checkpoint,
// so that each event takes effect exactly once, across crashes and
// restarts.
func ExampleNewTx() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	last := appendOrders(ctx, store)

	sub, err := subscription.NewTx(store, "order-status", func(ctx context.Context, tx *sql.Tx, events []eventstore.Recorded) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS order_status (
			id TEXT PRIMARY KEY, status TEXT NOT NULL)`); err != nil {
			return err
		}
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO order_status (id, status) VALUES (?1, ?2)
				ON CONFLICT (id) DO UPDATE SET status = ?2`, e.StreamID, e.Type); err != nil {
				return err // rolls back the batch, checkpoint included; it is tried again
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()

	// Read your writes: wait until the read model has the last event.
	if err := sub.WaitFor(ctx, last); err != nil {
		log.Fatal(err)
	}
	// Query the read model in the store's database.
	err = store.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, status FROM order_status ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				return err
			}
			fmt.Println(id, status)
		}
		return rows.Err()
	})
	if err != nil {
		log.Fatal(err)
	}

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	subs, err := subscription.List(ctx, store)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: checkpoint %d, lag %d\n", subs[0].Name, subs[0].Position, subs[0].Lag)
	// Output:
	// order-1 order.shipped
	// order-2 order.placed
	// order-status: checkpoint 3, lag 0
}

// A handler outside the store's database (a cache, a search index, another
// service) is called at least once per event: a crash between its work and
// the checkpoint hands the batch over again. This one is idempotent by
// keeping the position of the last event it applied to each stream and
// skipping what it has seen.
func ExampleNew() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	last := appendOrders(ctx, store)

	type status struct {
		name     string
		position uint64 // of the event that set it
	}
	var mu sync.Mutex
	orders := map[string]status{} // stands for the outside store
	sub, err := subscription.New(store, "order-cache", func(_ context.Context, events []eventstore.Recorded) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Position <= orders[e.StreamID].position {
				continue // applied before: a redelivery
			}
			orders[e.StreamID] = status{name: e.Type, position: e.Position}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()

	if err := sub.WaitFor(ctx, last); err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	ids := make([]string, 0, len(orders))
	for id := range orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Println(id, orders[id].name)
	}
	mu.Unlock()
	st := sub.Status()
	fmt.Printf("delivered %d, lag %d\n", st.Delivered, st.Lag)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// order-1 order.shipped
	// order-2 order.placed
	// delivered 3, lag 0
}

// A process that has no handler (an admin tool, the esv2 command) asks
// the running members to replay a parked event: the member holding its
// partition replays it at its next lease renewal, within a second here,
// and forgets it. The loop below is what such a tool does to wait for
// the outcome (a request cleared with the event still parked means the
// handler failed again).
func ExampleRequestReplay() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	last := appendOrders(ctx, store)

	var mailerUp atomic.Bool
	sub, err := subscription.New(store, "mailer", func(_ context.Context, events []eventstore.Recorded) error {
		for _, e := range events {
			if e.Type == "order.shipped" && !mailerUp.Load() {
				return errors.New("mail server down")
			}
		}
		return nil
	}, subscription.WithPolicy(subscription.Park), subscription.WithRetries(0, 0, 0))
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	if err := sub.WaitFor(ctx, last); err != nil {
		log.Fatal(err)
	}
	parked, err := subscription.ListParked(ctx, store, "mailer")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("parked:", parked[0].Position, parked[0].Error)

	mailerUp.Store(true)
	n, err := subscription.RequestReplay(ctx, store, "mailer", parked[0].Position)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("requested:", n)
	for {
		if parked, err = subscription.ListParked(ctx, store, "mailer"); err != nil {
			log.Fatal(err)
		}
		if len(parked) == 0 || parked[0].ReplayRequested.IsZero() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("still parked:", len(parked), "replayed:", sub.Status().Replayed)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// parked: 2 mail server down
	// requested: 1
	// still parked: 0 replayed: 1
}
