-- 11: appends commit side by side (issue 13 item 4).
--
-- Until now every append held one transaction-level advisory lock from
-- allocating its positions to its COMMIT, so that positions were gapless
-- and in commit order: the COMMIT's WAL flush was inside the lock, and
-- several processes' appends could never share a flush (4 processes x 16
-- writers reached 0.34-0.58x the rate of 1 process x 64).
--
-- Now appends take that lock shared (a deletion or truncation still takes
-- it exclusively) and draw their positions from the sequence positions
-- in a short critical section; each holds a marker, an advisory lock on
-- its first position, until it commits or aborts. Positions are still
-- increasing and never reused, but they are no longer committed in order,
-- and a group that rolls back leaves its positions unused. So:
--   - readers of the whole log read no further than safe_head(): the
--     last position below every marker, so that no event they pass can
--     still commit (the held-transaction test);
--   - the store's count is high_water.counted plus the events each writer
--     counts in its append_outcomes row, minus high_water.removed.
ALTER TABLE {schema}.high_water ADD COLUMN counted bigint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.append_outcomes ADD COLUMN events bigint NOT NULL DEFAULT 0;
-- No append may commit while the sequence and the count are set.
LOCK TABLE {schema}.events IN SHARE MODE;
CREATE SEQUENCE {schema}.positions AS bigint MINVALUE 0 START WITH 0;
SELECT setval('{schema}.positions',
	greatest(coalesce((SELECT max(position) FROM {schema}.events), 0), (SELECT position FROM {schema}.high_water)), true);
UPDATE {schema}.high_water SET counted = (SELECT count(*) FROM {schema}.events) + removed;

-- safe_head returns the last position of the whole log that a reader may
-- pass: every event at or below it has committed or never will. It reads
-- the sequence first, then the markers (see append_batch), then the
-- newest committed position, each in a statement of its own (a fresh
-- snapshot): a group whose positions lie at or below the sequence value
-- read has its marker taken already, so it is either still in pg_locks or
-- committed and visible. The newest committed position (or the high-water
-- mark, which deletions raise) bounds it too: the sequence's value is
-- made durable by the commit of the group that drew it, so after a crash
-- it can fall back to that but never below it.
CREATE FUNCTION {schema}.safe_head(p_lock bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
	v_seq bigint;
	v_mark bigint;
	v_top bigint;
BEGIN
	SELECT last_value INTO v_seq FROM {schema}.positions;
	SELECT min(((l.classid::bigint & 65535) << 32) | l.objid::bigint) INTO v_mark
	FROM pg_locks l
	WHERE l.locktype = 'advisory' AND l.objsubid = 2
	  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND (l.classid::bigint >> 16) = (p_lock & 32767);
	SELECT greatest(coalesce((SELECT max(position) FROM {schema}.events), 0), (SELECT position FROM {schema}.high_water))
	INTO v_top;
	RETURN least(v_seq, v_top, coalesce(v_mark - 1, v_seq));
END
$fn$;

-- append_batch, version 11: the shared lock, the drawn positions and
-- their marker, the writer's count. It returns its rows at the end, once
-- the positions are known. p_notify false leaves the NOTIFY to the
-- caller: PostgreSQL serialises the COMMITs of transactions that NOTIFY
-- (a lock held until the commit's WAL flush is done, so that the queue
-- stays in commit order), which would undo the side-by-side commits; the
-- writer sends it after COMMIT, in a transaction of its own that does not
-- wait for its flush (notifications do not outlive a crash anyway). The
-- older signatures, still called by instances not yet upgraded, notify
-- here as before.
CREATE FUNCTION {schema}.append_batch(p_notify bool,
	p_writer text, p_token bigint, p_lock bigint, p_channel text, p_ids bool, d_stream text[], d_hash bigint[],
	r_sidx int[], r_expected bigint[], r_count int[],
	e_req int[], e_id text[], e_type text[], e_data bytea[], e_meta jsonb[], e_time timestamptz[])
RETURNS TABLE (o_status int, o_version bigint, o_position bigint,
	o_dup_index int[], o_dup_version bigint[], o_other_id text, o_other_stream text)
LANGUAGE plpgsql AS $fn$
DECLARE
	v_start  bigint;
	v_head   bigint;
	d_ver    bigint[];
	d_created bool[];
	d_del    bool[];
	s_ord    bigint[] := '{}';
	s_stream text[] := '{}';
	s_ver    bigint[] := '{}';
	v_ns     int;
	v_p      int := 1;
	r_ok     bool[];
	r_base   bigint[];
	v_skip   bool[]; -- v_skip[j]: event j is stored already (NULL: none is)
	v_off    int := 0;
	v_n      int;
	v_k      int;
	v_si     int;
	v_cur    bigint;
	v_exp    bigint;
	v_now    timestamptz;
	v_lo     bigint;
	a_status int[] := '{}';
	a_ver    bigint[] := '{}';
	a_pos    bigint[] := '{}';
	a_extra  jsonb[] := '{}';
BEGIN
	-- Shared: appends run side by side; a deletion or truncation takes
	-- the lock exclusively, and so waits for every append in flight and
	-- holds new ones back.
	PERFORM pg_advisory_xact_lock_shared(p_lock);
	-- Positions are counted from 0 here and drawn below, once the group's
	-- checks know how many events it stores.
	v_start := 0;
	v_head := 0;
	-- A stream's version is its last event's, or, when it has no event,
	-- the one its row keeps if the stream was deleted. A stream with
	-- events is not deleted, so its row is read only when it has none:
	-- COALESCE and CASE evaluate those subqueries only then, and appends
	-- to existing streams pay nothing for the lifecycle. (A join with
	-- streams instead was planned as a hash join over all of it.)
	SELECT array_agg(coalesce(v.mv, (SELECT r.last_version FROM {schema}.streams r WHERE r.stream_id = d.s), 0) ORDER BY d.k),
	       array_agg(CASE WHEN v.mv IS NULL
	                 THEN coalesce((SELECT r.deleted FROM {schema}.streams r WHERE r.stream_id = d.s), false)
	                 ELSE false END ORDER BY d.k)
	INTO d_ver, d_del
	FROM unnest(d_stream) WITH ORDINALITY AS d(s, k)
	CROSS JOIN LATERAL (SELECT max(ev.version) AS mv FROM {schema}.events ev WHERE ev.stream_id = d.s) v;
	d_created := array_fill(false, ARRAY[cardinality(d_stream)]);
	IF p_ids THEN
		SELECT coalesce(array_agg(x.ord ORDER BY x.ord), '{}'),
		       coalesce(array_agg(ev.stream_id ORDER BY x.ord), '{}'),
		       coalesce(array_agg(ev.version ORDER BY x.ord), '{}')
		INTO s_ord, s_stream, s_ver
		FROM unnest(e_id) WITH ORDINALITY AS x(id, ord)
		JOIN {schema}.events ev ON ev.event_id = x.id
		WHERE x.id IS NOT NULL AND ev.event_id IS NOT NULL; -- lets the partial index serve
	END IF;
	v_ns := cardinality(s_ord);
	r_ok := array_fill(false, ARRAY[cardinality(r_sidx)]);
	r_base := array_fill(0::bigint, ARRAY[cardinality(r_sidx)]);
	FOR i IN 1 .. cardinality(r_sidx) LOOP
		v_n := r_count[i];
		v_si := r_sidx[i];
		v_cur := d_ver[v_si];
		o_position := 0;
		o_dup_index := '{}';
		o_dup_version := '{}';
		o_other_id := NULL;
		o_other_stream := NULL;
		-- The stored IDs among this request's events (s_ord is sorted).
		WHILE v_p <= v_ns AND s_ord[v_p] <= v_off + v_n LOOP
			IF s_stream[v_p] = d_stream[v_si] THEN
				o_dup_index := o_dup_index || (s_ord[v_p] - v_off - 1)::int;
				o_dup_version := o_dup_version || s_ver[v_p];
			ELSIF o_other_id IS NULL THEN
				o_other_id := e_id[s_ord[v_p]];
				o_other_stream := s_stream[v_p];
			END IF;
			v_p := v_p + 1;
		END LOOP;
		v_exp := r_expected[i];
		IF d_del[v_si] THEN
			-- Refused whatever the IDs: a deleted stream's IDs went
			-- with its events, and a retry must not pass for new.
			o_status := 3;
			o_dup_index := '{}';
			o_dup_version := '{}';
			o_other_id := NULL;
			o_other_stream := NULL;
		ELSIF o_other_id IS NOT NULL THEN
			o_status := 2;
			o_dup_index := '{}';
			o_dup_version := '{}';
		ELSIF v_n > 0 AND cardinality(o_dup_index) = v_n THEN
			o_status := 0; -- a retry of a stored batch: ok whatever the expectation
		ELSIF NOT (v_exp = -1 OR (v_exp = -2 AND v_cur > 0) OR v_exp = v_cur) THEN
			o_status := 1;
			o_dup_index := '{}';
			o_dup_version := '{}';
		ELSE
			o_status := 0;
			v_k := v_n - cardinality(o_dup_index);
			IF v_k > 0 THEN
				r_ok[i] := true;
				r_base[i] := v_cur;
				IF cardinality(o_dup_index) > 0 AND v_skip IS NULL THEN
					v_skip := array_fill(false, ARRAY[cardinality(e_req)]);
				END IF;
				FOR j IN 1 .. cardinality(o_dup_index) LOOP
					v_skip[v_off + 1 + o_dup_index[j]] := true;
				END LOOP;
				IF v_cur = 0 THEN
					d_created[v_si] := true;
				END IF;
				v_cur := v_cur + v_k;
				v_head := v_head + v_k;
				d_ver[v_si] := v_cur;
				o_position := v_head;
			END IF;
		END IF;
		o_version := v_cur;
		v_off := v_off + v_n;
		a_status := array_append(a_status, o_status);
		a_ver := array_append(a_ver, o_version);
		a_pos := array_append(a_pos, o_position);
		a_extra := array_append(a_extra, CASE WHEN cardinality(o_dup_index) > 0 OR o_other_id IS NOT NULL
			THEN jsonb_build_array(o_dup_index, o_dup_version, o_other_id, o_other_stream) END);
	END LOOP;
	IF v_head > 0 THEN
		-- Draw the group's positions, in one short critical section under
		-- the session-level lock p_lock # 1 (released at once, not at
		-- commit): the next v_head positions of the sequence, and the
		-- marker, a transaction-level advisory lock on the first of them
		-- (shared: a key another schema's marker may share never blocks)
		-- (classid: p_lock's low 15 bits, then the position's bits 32-47;
		-- objid: its low 32 bits) that pg_locks shows until this
		-- transaction commits or aborts. safe_head reads the sequence,
		-- then the markers, so that no position it calls settled can
		-- still commit. A failure inside (a cancel included) releases the
		-- session lock before it goes on.
		BEGIN
			PERFORM pg_advisory_lock(p_lock # 1);
			-- Never below the high-water mark either (see migration 6).
			SELECT greatest(q.last_value, hw.position) INTO v_start FROM {schema}.positions q, {schema}.high_water hw;
			IF v_start + v_head >= 281474976710656 THEN
				RAISE EXCEPTION 'esv2: positions past 2^48 are not supported' USING ERRCODE = 'ES002';
			END IF;
			v_lo := (v_start + 1) & 4294967295;
			PERFORM pg_advisory_xact_lock_shared((((p_lock & 32767) << 16) | ((v_start + 1) >> 32))::int,
				(v_lo - CASE WHEN v_lo >= 2147483648 THEN 4294967296 ELSE 0 END)::int);
			PERFORM setval('{schema}.positions', v_start + v_head, true);
			-- Under the lock: times follow the position order.
			v_now := clock_timestamp();
			PERFORM pg_advisory_unlock(p_lock # 1);
		EXCEPTION WHEN OTHERS OR query_canceled THEN
			PERFORM pg_advisory_unlock(p_lock # 1);
			RAISE;
		END;
		v_head := v_start + v_head;
		a_pos := ARRAY(SELECT CASE WHEN p > 0 THEN p + v_start ELSE 0 END FROM unnest(a_pos) WITH ORDINALITY AS x(p, k) ORDER BY k);
		INSERT INTO {schema}.events (position, stream_id, stream_hash, version, event_id, type, data, metadata, occurred_at)
		SELECT v_start + row_number() OVER (ORDER BY x.ord),
		       d_stream[r_sidx[x.req]], d_hash[r_sidx[x.req]],
		       r_base[x.req] + row_number() OVER (PARTITION BY x.req ORDER BY x.ord),
		       x.id, x.typ, coalesce(x.dat, '\x'::bytea), x.meta, coalesce(x.tm, v_now)
		FROM unnest(e_req, e_id, e_type, e_data, e_meta, e_time) WITH ORDINALITY AS x(req, id, typ, dat, meta, tm, ord)
		WHERE r_ok[x.req] AND NOT coalesce(v_skip[x.ord], false);
		INSERT INTO {schema}.streams (stream_id, created_at)
		SELECT d.s, v_now FROM unnest(d_stream, d_created) AS d(s, created) WHERE d.created
		ON CONFLICT (stream_id) DO NOTHING;
		-- One NOTIFY per transaction, never per event.
		IF p_notify THEN
			PERFORM pg_notify(p_channel, v_head::text);
		END IF;
	END IF;
	IF v_now IS NULL THEN
		v_now := clock_timestamp();
	END IF;
	IF p_writer IS NOT NULL THEN
		-- events counts what this writer stored: with appends side by
		-- side, a position drawn by a group that then rolled back stays
		-- unused, so the store's count is high_water.counted plus these
		-- minus high_water.removed, not the head minus removed.
		INSERT INTO {schema}.append_outcomes AS o (writer_id, token, statuses, versions, positions, extras, updated_at, events)
		VALUES (p_writer, p_token, a_status, a_ver, a_pos, a_extra, v_now, v_head - v_start)
		ON CONFLICT (writer_id) DO UPDATE SET token = excluded.token, statuses = excluded.statuses,
			versions = excluded.versions, positions = excluded.positions, extras = excluded.extras,
			updated_at = excluded.updated_at, events = o.events + excluded.events
		WHERE o.token < excluded.token;
		IF NOT FOUND THEN
			-- An outcome check fenced this token: the writer was told
			-- this group did not commit, so it must not.
			RAISE EXCEPTION 'esv2: append group % of writer % was fenced by an outcome check', p_token, p_writer
				USING ERRCODE = 'ES001';
		END IF;
	ELSIF v_head > v_start THEN
		UPDATE {schema}.high_water SET counted = counted + (v_head - v_start);
	END IF;
	RETURN QUERY SELECT x.s, x.v, x.p, coalesce(ARRAY(SELECT jsonb_array_elements_text(x.e->0)::int), '{}'),
		coalesce(ARRAY(SELECT jsonb_array_elements_text(x.e->1)::bigint), '{}'), x.e->>2, x.e->>3
		FROM unnest(a_status, a_ver, a_pos, a_extra) WITH ORDINALITY AS x(s, v, p, e, k) ORDER BY x.k;
END
$fn$;

CREATE OR REPLACE FUNCTION {schema}.append_batch(
	p_writer text, p_token bigint, p_lock bigint, p_channel text, p_ids bool, d_stream text[], d_hash bigint[],
	r_sidx int[], r_expected bigint[], r_count int[],
	e_req int[], e_id text[], e_type text[], e_data bytea[], e_meta jsonb[], e_time timestamptz[])
RETURNS TABLE (o_status int, o_version bigint, o_position bigint,
	o_dup_index int[], o_dup_version bigint[], o_other_id text, o_other_stream text)
LANGUAGE sql AS $fn$
	SELECT * FROM {schema}.append_batch(true, p_writer, p_token, p_lock, p_channel, p_ids, d_stream, d_hash,
		r_sidx, r_expected, r_count, e_req, e_id, e_type, e_data, e_meta, e_time)
$fn$;
