-- 5: the keys of data subjects, for crypto-shredding (codec.Personal,
-- issue 12). One random 32-byte AES key per subject; Forget deletes the row
-- (with secure_delete on, so that the freed bytes are zeroed), after which
-- the subject's personal values decode as redacted. Kept in its own table
-- of the store's file so that a backup of the events is a backup of the
-- keys that open them, and forgetting needs no second system.
CREATE TABLE IF NOT EXISTS subject_keys (
	subject TEXT    NOT NULL PRIMARY KEY,
	key     BLOB    NOT NULL,
	created INTEGER NOT NULL
) WITHOUT ROWID;
