-- 6: stream lifecycle (issue 12). A deleted stream keeps its row in
-- streams as a tombstone: deleted = 1, version its last version, so that
-- versions are never given out again and appends are refused. first_version
-- is the first version that may still be stored: 1, raised by a truncation
-- (and to version + 1 by a deletion), so that Info counts the events kept
-- without a scan. Positions need nothing: AUTOINCREMENT (migration 1)
-- never reuses a rowid, and the head row keeps the last one handed out.
ALTER TABLE streams ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN first_version INTEGER NOT NULL DEFAULT 1;
