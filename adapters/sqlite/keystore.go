package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

var _ codec.KeyStore = keyTable{}

// KeyStore returns the store's key store: the keys of data subjects for
// [codec.Personal] values, kept in the table subject_keys of the store's
// own database (schema version 5), so that the events and the keys that
// open them live, and are backed up, together. Give it to the registries
// that encode personal data:
//
//	reg := codec.New[Event](codec.WithKeyStore(store.KeyStore()))
//
// and forget a data subject with store.KeyStore().Forget(ctx, subject).
// Every call returns the same key store, with a [codec.KeyCache] in front
// of the table (keys kept up to [codec.DefaultKeyCacheTTL], or as
// [WithKeyCacheTTL] says): a Forget
// through it is seen by this Store at once, by other processes sharing the
// file when their cached key expires.
//
// Forget deletes the key's row with PRAGMA secure_delete on, so that SQLite
// overwrites the freed bytes with zeros. In WAL mode the key's bytes stay
// in the WAL file (the frames written when it was created) until a
// checkpoint moves the zeroed page into the database file and the WAL is
// truncated: after forgetting, run
//
//	PRAGMA wal_checkpoint(TRUNCATE);
//
// on any connection to the file (it succeeds once no reader still uses
// the old frames; its first result column is 1 while one does, and the
// statement can be run again). Backups and copies of the file made before
// hold the key until they are deleted. An in-memory store has no file.
func (s *Store) KeyStore() codec.KeyStore { return s.keys }

// keyTable is the key store over the subject_keys table, behind the
// Store's cache.
type keyTable struct{ d *drv }

// Key reads the subject's key through the reader pool; see
// [codec.KeyStore].
func (k keyTable) Key(ctx context.Context, subject string) ([]byte, error) {
	if err := keyCall(ctx, subject); err != nil {
		return nil, err
	}
	d := k.d
	if d.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	var key []byte
	err := func() error {
		unlock := d.readLock()
		defer unlock()
		return d.queryRow(ctx, "SELECT key FROM subject_keys WHERE subject = ?", subject).Scan(&key)
	}()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%w: subject %q", codec.ErrKeyNotFound, subject)
	case err != nil:
		return nil, fmt.Errorf("sqlite: subject key: %w", d.readError(ctx, err))
	}
	return key, nil
}

// Create inserts a new key unless the subject has one, and returns the
// subject's key; see [codec.KeyStore].
func (k keyTable) Create(ctx context.Context, subject string) ([]byte, error) {
	if err := keyCall(ctx, subject); err != nil {
		return nil, err
	}
	fresh, err := codec.NewKey()
	if err != nil {
		return nil, err
	}
	var key []byte
	err = k.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO subject_keys (subject, key, created) VALUES (?, ?, ?)",
			subject, fresh, time.Now().UnixNano()); err != nil {
			return txError(ctx, err)
		}
		return txError(ctx, tx.QueryRowContext(ctx, "SELECT key FROM subject_keys WHERE subject = ?", subject).Scan(&key))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: create subject key: %w", err)
	}
	return key, nil
}

// Forget deletes the subject's key, with secure_delete on so that its
// bytes are overwritten; see [Store.KeyStore] for the WAL.
func (k keyTable) Forget(ctx context.Context, subject string) error {
	if err := keyCall(ctx, subject); err != nil {
		return err
	}
	err := k.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var was int
		if err := tx.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&was); err != nil {
			return txError(ctx, err)
		}
		if was == 0 {
			if _, err := tx.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
				return txError(ctx, err)
			}
			// The writer's connection goes on without it: appends never
			// delete, and zeroing costs writes.
			defer func() { _, _ = tx.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF") }()
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM subject_keys WHERE subject = ?", subject); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: forget subject key: %w", err)
	}
	return nil
}

// keyCall checks a key store call's context and subject.
func keyCall(ctx context.Context, subject string) error {
	if ctx == nil {
		return &eventstore.ValidationError{Field: "ctx", Index: -1, Reason: "nil"}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return codec.CheckSubject(subject)
}

// WithKeyCacheTTL sets how long the store's [Store.KeyStore] keeps a
// subject's key in memory after reading it: 0 (the default) means
// [codec.DefaultKeyCacheTTL], a negative value no cache at all, so that a
// Forget by another process is seen at the next read (each personal value
// decoded then reads its key from the database).
func WithKeyCacheTTL(d time.Duration) Option {
	return func(o *options) error {
		o.keyCacheTTL = d
		return nil
	}
}
