package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/subscription"
)

// readModel runs the balances subscription (readmodel.go) in the
// background while the bank's story goes on.
type readModel struct {
	store *sqlite.Store
	sub   *subscription.Subscription
	stop  context.CancelFunc
	done  chan struct{} // closed when Run returned
	err   error         // Run's error, once done is closed
}

func startReadModel(ctx context.Context, store *sqlite.Store, events *codec.Router, opts ...subscription.Option) (*readModel, error) {
	sub, err := newBalances(store, events, opts...)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	m := &readModel{store: store, sub: sub, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.err = sub.Run(ctx)
	}()
	return m, nil
}

// waitFor waits until the read model has handled every event up to
// position pos, so that a query sees them: read-your-writes.
func (m *readModel) waitFor(ctx context.Context, pos uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Run ending (a handler error under the Stop policy, say) would leave
	// WaitFor waiting for nothing.
	go func() {
		select {
		case <-m.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := m.sub.WaitFor(ctx, pos)
	if err == nil {
		return nil
	}
	select {
	case <-m.done:
		return fmt.Errorf("read model stopped before position %d: %w", pos, m.err)
	default:
		return fmt.Errorf("read model: position %d: %w (status %+v)", pos, err, m.sub.Status())
	}
}

// close stops Run and returns its error.
func (m *readModel) close() error {
	m.stop()
	<-m.done
	return m.err
}

// balance is a row of the read model.
type balance struct {
	Account          string
	Balance, Version int64
}

// queryBalances reads the table balances, by account.
func queryBalances(ctx context.Context, store *sqlite.Store) ([]balance, error) {
	var rows []balance
	// ReadTx reads the store's own database, in-memory too.
	err := store.ReadTx(ctx, func(tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, `SELECT account, balance, version FROM balances ORDER BY account`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var b balance
			if err := rs.Scan(&b.Account, &b.Balance, &b.Version); err != nil {
				return err
			}
			rows = append(rows, b)
		}
		return rs.Err()
	})
	return rows, err
}
