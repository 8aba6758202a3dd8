-- 1: the event log, stream heads, the store's head and snapshots.
-- Positions use AUTOINCREMENT so that a position is never reused, even if
-- rows were ever deleted by hand; the single writer makes rowid order
-- commit order.
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	event_id  TEXT,
	type      TEXT    NOT NULL,
	data      BLOB,
	metadata  TEXT,
	time      INTEGER NOT NULL,
	UNIQUE (stream_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (
	stream_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL,
	last_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	position  INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	last_time INTEGER NOT NULL
);
INSERT OR IGNORE INTO head (id, position, count, last_time) VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS snapshots (
	stream_id TEXT    NOT NULL,
	name      TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	schema    TEXT    NOT NULL,
	data      BLOB,
	time      INTEGER NOT NULL,
	PRIMARY KEY (stream_id, name)
) WITHOUT ROWID;
