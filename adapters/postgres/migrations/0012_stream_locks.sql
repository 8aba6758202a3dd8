-- 12: groups that append to the same stream wait for each other (issue
-- 13 item 4, a fault of migration 11).
--
-- Since 11, append groups commit side by side. Two groups, of two
-- processes or of one, that append to the same stream both read its last
-- version before either commits; the second's INSERT then waits for the
-- first's COMMIT and fails on (stream_id, version). The writer retries,
-- but under contention its attempts ran out: an append expecting Any,
-- which cannot conflict, was refused (TestConcurrentAppends, 2 stores x 8
-- goroutines appending to 4 streams, failed in 1 run of 6 to 8), and one
-- expecting an exact version got a conflict that did not know the
-- stream's version.
--
-- Now each group first takes a transaction-level advisory lock on each of
-- its streams, exclusive and held until it commits, in key order, so that
-- groups never wait for each other in a cycle: a group that appends to a
-- stream another group has in flight waits for that one's COMMIT, then
-- reads the version it wrote (each statement of append_batch takes a
-- fresh snapshot at READ COMMITTED, which the writer's transaction sets).
-- Groups on different streams still commit side by side.
--
-- The key is two ints: classid = (32768 | p_lock's low 15 bits) << 16,
-- whose top bit keeps it out of the markers safe_head reads (theirs have
-- classid >> 16 = p_lock & 32767), and objid = the stream's 32-bit hash
-- (migration 6). Streams whose hashes collide wait for each other: time,
-- never correctness. A deletion or truncation takes no stream lock, so it
-- cannot wait for a group that waits for it.
--
-- The body of append_batch stays as migration 11 wrote it, renamed; the
-- new append_batch takes the locks and calls it. The older signatures
-- call append_batch by name, so they take the locks too.
ALTER FUNCTION {schema}.append_batch(bool, text, bigint, bigint, text, bool, text[], bigint[],
	int[], bigint[], int[], int[], text[], text[], bytea[], jsonb[], timestamptz[])
	RENAME TO append_batch_unlocked;

CREATE FUNCTION {schema}.append_batch(p_notify bool,
	p_writer text, p_token bigint, p_lock bigint, p_channel text, p_ids bool, d_stream text[], d_hash bigint[],
	r_sidx int[], r_expected bigint[], r_count int[],
	e_req int[], e_id text[], e_type text[], e_data bytea[], e_meta jsonb[], e_time timestamptz[])
RETURNS TABLE (o_status int, o_version bigint, o_position bigint,
	o_dup_index int[], o_dup_version bigint[], o_other_id text, o_other_stream text)
LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_advisory_xact_lock(k.c, k.o)
	FROM (SELECT DISTINCT ((((32768 | (p_lock & 32767)) << 16)) - 4294967296)::int AS c,
	             (h - CASE WHEN h >= 2147483648 THEN 4294967296 ELSE 0 END)::int AS o
	      FROM unnest(d_hash) AS h
	      ORDER BY 1, 2) AS k;
	RETURN QUERY SELECT * FROM {schema}.append_batch_unlocked(p_notify, p_writer, p_token, p_lock, p_channel, p_ids,
		d_stream, d_hash, r_sidx, r_expected, r_count, e_req, e_id, e_type, e_data, e_meta, e_time);
END
$fn$;
