package main

import (
	"context"
	"database/sql"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// balancesSub names the read model's subscription: its checkpoint is kept
// under this name in the store's database, next to the table it feeds.
const balancesSub = "bank-balances"

// newBalances returns the subscription that keeps the read model: a row per
// account, with its balance and the version of its last event, in the
// table balances of the store's own database. Its handler writes through
// the transaction in which the subscription also moves its checkpoint, so
// the rows and the checkpoint commit together or not at all: each event
// counts once, however often the consumer crashes, and a restarted Run
// resumes after the last batch committed.
func newBalances(store *sqlite.Store, events *codec.Router, opts ...subscription.Option) (*subscription.Subscription, error) {
	return subscription.NewTx(store, balancesSub, func(ctx context.Context, tx *sql.Tx, batch []eventstore.Recorded) error {
		// The transaction is the handler's way into the database: the
		// table is made there too, with the first batch.
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS balances (
			account TEXT PRIMARY KEY, balance INTEGER NOT NULL, version INTEGER NOT NULL)`); err != nil {
			return err
		}
		for _, rec := range batch {
			e, err := events.Decode(rec)
			if err != nil {
				return err // an event it cannot read stops the read model; none is skipped
			}
			var delta int64 // account.opened adds the row at 0
			switch e := e.(type) {
			case Deposited:
				delta = e.Amount
			case Withdrawn:
				delta = -e.Amount
			case TransferSent:
				delta = -e.Amount
			case TransferReceived:
				delta = e.Amount
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO balances (account, balance, version) VALUES (?1, ?2, ?3)
				ON CONFLICT (account) DO UPDATE SET balance = balance + ?2, version = ?3`,
				rec.StreamID, delta, rec.Version); err != nil {
				return err
			}
		}
		return nil
	}, opts...)
}
