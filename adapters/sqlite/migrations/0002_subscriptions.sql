-- 2: subscriptions (package subscription's Backend): one row per
-- partition, the group's members, and the events set aside.
-- Times are Unix nanoseconds (microsecond precision, as the events'); 0
-- stands for none. owner is '' when no member holds the partition.
CREATE TABLE IF NOT EXISTS subscriptions (
	name        TEXT    NOT NULL,
	partition   INTEGER NOT NULL,
	position    INTEGER NOT NULL,
	owner       TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0,
	epoch       INTEGER NOT NULL DEFAULT 0,
	updated     INTEGER NOT NULL,
	PRIMARY KEY (name, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscription_members (
	name    TEXT    NOT NULL,
	member  TEXT    NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscription_parked (
	name      TEXT    NOT NULL,
	position  INTEGER NOT NULL,
	stream_id TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	type      TEXT    NOT NULL,
	event_id  TEXT    NOT NULL,
	error     TEXT    NOT NULL,
	attempts  INTEGER NOT NULL,
	time      INTEGER NOT NULL,
	PRIMARY KEY (name, position)
) WITHOUT ROWID;
