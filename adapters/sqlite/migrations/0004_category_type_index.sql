-- 4: indexes for reads of all streams by category and by event type
-- (issue 13 item 2). Without them, reading one category's events, or one
-- type's, over all streams was a scan of the whole log: ~110 ms for the
-- one event of a prefix among 300,000, against 0.27 ms by its stream.
--
-- A stream's category is its ID up to the first '-' (the whole ID when it
-- has none), as message-db and KurrentDB define it. The column is virtual:
-- computed, never stored; only the index holds it. An index of SQLite
-- ends with the rowid, the position, so each category's (and each type's)
-- entries lie in global order and a page is one range of the index.
ALTER TABLE events ADD COLUMN category TEXT GENERATED ALWAYS AS (
	CASE WHEN instr(stream_id, '-') > 0 THEN substr(stream_id, 1, instr(stream_id, '-') - 1) ELSE stream_id END
) VIRTUAL;
CREATE INDEX IF NOT EXISTS events_category ON events (category);
CREATE INDEX IF NOT EXISTS events_type ON events (type);
