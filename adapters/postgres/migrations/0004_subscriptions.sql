-- 4: subscriptions (package subscription): durable consumers' checkpoints,
-- partition leases, live members and parked events. Names are compared
-- and sorted byte by byte (COLLATE "C"), as Go compares strings, whatever
-- the database's collation.
--
-- One row per partition. owner is NULL when no member holds the
-- partition, and lease_until is NULL with it; epoch grows each time the
-- partition changes hands or is reset, and a checkpoint is written only
-- under the epoch its member was given (fencing). updated is when
-- position last changed.
CREATE TABLE {schema}.subscriptions (
	name        text COLLATE "C" NOT NULL,
	partition   int              NOT NULL,
	position    bigint           NOT NULL,
	owner       text COLLATE "C",
	lease_until timestamptz,
	epoch       bigint           NOT NULL DEFAULT 0,
	updated     timestamptz      NOT NULL,
	CONSTRAINT subscriptions_pkey PRIMARY KEY (name, partition)
);

-- The members of a subscription's group and when each stops counting as
-- alive unless it beats again.
CREATE TABLE {schema}.subscription_members (
	name    text COLLATE "C" NOT NULL,
	member  text COLLATE "C" NOT NULL,
	expires timestamptz      NOT NULL,
	CONSTRAINT subscription_members_pkey PRIMARY KEY (name, member)
);

-- Events a subscription's handler failed on and set aside.
CREATE TABLE {schema}.subscription_parked (
	name      text COLLATE "C" NOT NULL,
	position  bigint           NOT NULL,
	stream_id text             NOT NULL,
	version   bigint           NOT NULL,
	type      text             NOT NULL,
	event_id  text             NOT NULL,
	error     text             NOT NULL,
	attempts  bigint           NOT NULL,
	parked_at timestamptz      NOT NULL,
	CONSTRAINT subscription_parked_pkey PRIMARY KEY (name, position)
);
