
-- streams lists the streams, one row written at a stream's first event.
-- Versions are read from the events' (stream_id, version) index, so that
-- appending to an existing stream writes its events and nothing else.
CREATE TABLE {schema}.streams (
	stream_id  text        NOT NULL,
	created_at timestamptz NOT NULL,
	CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE {schema}.events (
	position    bigint      NOT NULL,
	stream_id   text        NOT NULL,
	version     bigint      NOT NULL,
	event_id    text,
	type        text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    jsonb,
	occurred_at timestamptz NOT NULL,
	CONSTRAINT events_pkey PRIMARY KEY (position),
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
-- Partial: events without an ID cost no entry.
CREATE UNIQUE INDEX events_event_id_key ON {schema}.events (event_id) WHERE event_id IS NOT NULL;

CREATE TABLE {schema}.snapshots (
	stream_id  text        NOT NULL,
	name       text        NOT NULL,
	version    bigint      NOT NULL,
	schema_tag text        NOT NULL,
	data       bytea       NOT NULL,
	saved_at   timestamptz NOT NULL,
	CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, name)
);

-- append_batch appends the requests of one group commit in one statement.
-- Request i targets stream d_stream[r_sidx[i]] (d_stream lists the group's
-- streams once each) with expectation r_expected[i] (-1 any, -2 stream
-- exists, >= 0 exact) and owns the next r_count[i] elements of the e_*
-- arrays (e_req[j] is the request of event j). No event ID appears in two
-- requests of a group (the writer splits groups so). p_ids says whether
-- any event has an ID.
--
-- It returns one row per request, in order: o_status 0 = ok, 1 = version
-- conflict (o_version = actual), 2 = an event ID stored in another stream
-- (o_other_id, o_other_stream); o_dup_index / o_dup_version list the
-- events already stored in the same stream (0-based index in the request)
-- and the versions they have; o_position is the position of the request's
-- last new event, 0 if none.
--
-- The requests are checked in order against the state the previous ones
-- leave, in memory; then one INSERT stores every accepted event and one
-- more registers new streams: a fixed number of statements per group,
-- none per request or per event.
--
-- Positions are allocated as max(position)+1 while holding the advisory
-- lock p_lock until commit, so they are gapless and in commit order.
CREATE FUNCTION {schema}.append_batch(
	p_lock bigint, p_channel text, p_ids bool, d_stream text[],
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
	v_now    timestamptz := now();
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	SELECT coalesce(max(ev.position), 0) INTO v_start FROM {schema}.events ev;
	v_head := v_start;
	SELECT array_agg(coalesce((SELECT max(ev.version) FROM {schema}.events ev WHERE ev.stream_id = d.s), 0) ORDER BY d.k)
	INTO d_ver
	FROM unnest(d_stream) WITH ORDINALITY AS d(s, k);
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
		IF o_other_id IS NOT NULL THEN
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
		RETURN NEXT;
	END LOOP;
	IF v_head > v_start THEN
		INSERT INTO {schema}.events (position, stream_id, version, event_id, type, data, metadata, occurred_at)
		SELECT v_start + row_number() OVER (ORDER BY x.ord),
		       d_stream[r_sidx[x.req]],
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
END
$fn$;
