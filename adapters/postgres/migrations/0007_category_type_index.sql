-- 7: indexes for reads of all streams by category and by event type
-- (issue 13 item 2). Without them, reading one category's events, or one
-- type's, over all streams was a scan of the whole log: ~110 ms for the
-- one event of a prefix among 300,000, against 0.27 ms by its stream.
--
-- A stream's category is its ID up to the first '-' (the whole ID when it
-- has none), as message-db and KurrentDB define it: split_part gives
-- exactly that. Each index ends with the position, so a category's (or a
-- type's) events lie in global order and a page is one range of it. Reads
-- add the category's equality to a stream prefix that fixes it (one with
-- a '-'), and use "type = $n" for a single type.
CREATE INDEX events_category ON {schema}.events (split_part(stream_id, '-', 1), position);
CREATE INDEX events_type ON {schema}.events (type, position);
