package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

var _ codec.KeyStore = (*keyTable)(nil)

// KeyStore returns the store's key store: the keys of data subjects for
// [codec.Personal] values, kept in the table subject_keys of the store's
// schema (migration 8), so that the events and the keys that open them
// live, and are backed up, together. Give it to the registries that encode
// personal data:
//
//	reg := codec.New[Event](codec.WithKeyStore(store.KeyStore()))
//
// and forget a data subject with store.KeyStore().Forget(ctx, subject).
// Every call returns the same key store, with a [codec.KeyCache] in front
// of the table (keys kept up to [codec.DefaultKeyCacheTTL], or as
// [WithKeyCacheTTL] says): a Forget
// through it is seen by this Store at once, by other processes' stores when
// their cached key expires.
//
// Forget deletes the key's row. PostgreSQL keeps a deleted row's bytes in
// the table's file as a dead tuple; plain VACUUM only marks that space
// free for reuse, and the bytes stay until a new row overwrites them
// (TestForgottenKeyLeavesTableFile finds the key in the file after VACUUM).
// VACUUM FULL rewrites the (small) table into a new file without it, and
// the old file is deleted:
//
//	VACUUM FULL esv2.subject_keys;  -- the schema of WithSchema
//
// It locks the table for the moment it takes (key look-ups wait), so run
// it after a batch of Forgets rather than after each. Like every VACUUM it
// keeps the rows a transaction still running might see: a transaction
// that began before the Forget, anywhere in the database (or a replication
// slot or a standby's hot_standby_feedback holding the same horizon back),
// keeps the key in the new file too; run it again once that transaction
// has ended. Write-ahead log
// segments (until recycled after the next checkpoints), WAL archives,
// replicas until they replay the delete, and backups hold the key until
// they are gone too.
func (s *Store) KeyStore() codec.KeyStore { return s.keys }

// keyTable is the key store over the subject_keys table, behind the
// Store's cache.
type keyTable struct {
	d                   *pgDriver
	get, insert, forget string
}

func newKeyTable(d *pgDriver) *keyTable {
	t := d.schema + ".subject_keys"
	return &keyTable{
		d:   d,
		get: "SELECT key FROM " + t + " WHERE subject = $1",
		// DO NOTHING rather than DO UPDATE: an update would leave a
		// dead copy of the key behind in the table's file.
		insert: "INSERT INTO " + t + " (subject, key) VALUES ($1, $2) ON CONFLICT (subject) DO NOTHING RETURNING key",
		forget: "DELETE FROM " + t + " WHERE subject = $1",
	}
}

func (k *keyTable) check(ctx context.Context, subject string) error {
	if ctx == nil {
		return &eventstore.ValidationError{Field: "ctx", Index: -1, Reason: "nil"}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := codec.CheckSubject(subject); err != nil {
		return err
	}
	if k.d.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// Key reads the subject's key; see [codec.KeyStore].
func (k *keyTable) Key(ctx context.Context, subject string) ([]byte, error) {
	if err := k.check(ctx, subject); err != nil {
		return nil, err
	}
	var key []byte
	err := k.d.pool.QueryRow(ctx, k.get, subject).Scan(&key)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w: subject %q", codec.ErrKeyNotFound, subject)
	case err != nil:
		return nil, keyError(ctx, err, "subject key")
	}
	return key, nil
}

// Create inserts a new key unless the subject has one, and returns the
// subject's key; see [codec.KeyStore]. A concurrent Create of the same
// subject waits on the primary key for the first to commit, inserts
// nothing, and reads the key the first stored.
func (k *keyTable) Create(ctx context.Context, subject string) ([]byte, error) {
	if err := k.check(ctx, subject); err != nil {
		return nil, err
	}
	fresh, err := codec.NewKey()
	if err != nil {
		return nil, err
	}
	var key []byte
	err = k.d.pool.QueryRow(ctx, k.insert, subject, fresh).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		// Stored already: a new statement sees the committed row.
		err = k.d.pool.QueryRow(ctx, k.get, subject).Scan(&key)
	}
	if err != nil {
		return nil, keyError(ctx, err, "create subject key")
	}
	return key, nil
}

// Forget deletes the subject's key; see [Store.KeyStore] for VACUUM.
func (k *keyTable) Forget(ctx context.Context, subject string) error {
	if err := k.check(ctx, subject); err != nil {
		return err
	}
	if _, err := k.d.pool.Exec(ctx, k.forget, subject); err != nil {
		return keyError(ctx, err, "forget subject key")
	}
	return nil
}

func keyError(ctx context.Context, err error, op string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return translateError(err, opErr(op))
}

// WithKeyCacheTTL sets how long the store's [Store.KeyStore] keeps a
// subject's key in memory after reading it: 0 (the default) means
// [codec.DefaultKeyCacheTTL], a negative value no cache at all, so that a
// Forget by another process is seen at the next read (each personal value
// decoded then reads its key from the database).
func WithKeyCacheTTL(d time.Duration) Option {
	return func(o *config) error {
		o.keyCacheTTL = d
		return nil
	}
}
