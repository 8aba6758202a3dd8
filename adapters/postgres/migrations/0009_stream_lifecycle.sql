-- 9: stream lifecycle (issue 12): deletion, truncation, snapshot deletion.
--
-- A deleted stream keeps its streams row as a tombstone: deleted = true,
-- last_version its last version, so that a stream's version is
-- greatest(max(events.version), last_version) and is never given out
-- again (a truncation keeps the last event, so only a deleted stream has
-- a version without events); first_version is the first version that may
-- still be stored (raised by a truncation), so that Info counts the events
-- kept.
-- high_water.removed counts the events removed, so that the store's count
-- stays one index probe: positions are gapless as allocated (under the
-- append lock, from the high-water mark of migration 6), so the events
-- stored are the head minus those removed. Deletions and truncations take
-- the append lock, raise high_water.position to the last position handed
-- out, then delete, in one transaction.
ALTER TABLE {schema}.streams ADD COLUMN deleted boolean NOT NULL DEFAULT false;
ALTER TABLE {schema}.streams ADD COLUMN first_version bigint NOT NULL DEFAULT 1;
ALTER TABLE {schema}.streams ADD COLUMN last_version bigint NOT NULL DEFAULT 0;
ALTER TABLE {schema}.high_water ADD COLUMN removed bigint NOT NULL DEFAULT 0;

-- append_batch (the version-6 signature, which the older ones call) now
-- reads versions kept by stream rows and refuses a deleted stream's
-- requests with o_status 3 (o_version its last version). An instance not
-- yet upgraded reports status 3 as an unexpected status: an error, and
-- nothing written.
CREATE OR REPLACE FUNCTION {schema}.append_batch(
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
	a_status int[] := '{}';
	a_ver    bigint[] := '{}';
	a_pos    bigint[] := '{}';
	a_extra  jsonb[] := '{}';
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	-- After the wait: times follow the lock (and position) order.
	v_now := clock_timestamp();
	-- Never below the high-water mark: positions of deleted events are
	-- not handed out again (issue 12).
	SELECT greatest(coalesce((SELECT max(ev.position) FROM {schema}.events ev), 0),
	                (SELECT hw.position FROM {schema}.high_water hw))
	INTO v_start;
	v_head := v_start;
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
		RETURN NEXT;
	END LOOP;
	IF v_head > v_start THEN
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
		PERFORM pg_notify(p_channel, v_head::text);
	END IF;
	IF p_writer IS NOT NULL THEN
		INSERT INTO {schema}.append_outcomes AS o (writer_id, token, statuses, versions, positions, extras, updated_at)
		VALUES (p_writer, p_token, a_status, a_ver, a_pos, a_extra, v_now)
		ON CONFLICT (writer_id) DO UPDATE SET token = excluded.token, statuses = excluded.statuses,
			versions = excluded.versions, positions = excluded.positions, extras = excluded.extras,
			updated_at = excluded.updated_at
		WHERE o.token < excluded.token;
		IF NOT FOUND THEN
			-- An outcome check fenced this token: the writer was told
			-- this group did not commit, so it must not.
			RAISE EXCEPTION 'esv2: append group % of writer % was fenced by an outcome check', p_token, p_writer
				USING ERRCODE = 'ES001';
		END IF;
	END IF;
END
$fn$;
