-- 3: the highest epoch each deleted subscription reached. A subscription
-- created again under a deleted one's name starts its epochs there, so
-- that a member of the deleted one, with a batch under way, holds no epoch
-- the new one hands out and cannot commit into it.
CREATE TABLE IF NOT EXISTS subscription_epochs (
	name  TEXT    NOT NULL PRIMARY KEY,
	epoch INTEGER NOT NULL
) WITHOUT ROWID;
