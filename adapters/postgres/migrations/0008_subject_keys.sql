-- 8: the keys of data subjects, for crypto-shredding (codec.Personal,
-- issue 12). One random 32-byte AES key per subject; Forget deletes the
-- row, after which the subject's personal values decode as redacted. The
-- deleted row's bytes stay in the table's file (plain VACUUM only frees the
-- space for reuse) until VACUUM FULL rewrites the table: see
-- (*Store).KeyStore.
CREATE TABLE {schema}.subject_keys (
	subject    text        NOT NULL,
	key        bytea       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	CONSTRAINT subject_keys_pkey PRIMARY KEY (subject),
	CONSTRAINT subject_keys_key_size CHECK (octet_length(key) = 32)
);
