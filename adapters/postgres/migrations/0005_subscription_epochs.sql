-- 5: the highest epoch each deleted subscription reached. A subscription
-- created again under a deleted one's name starts its epochs there, so
-- that a member of the deleted one, with a batch under way, holds no epoch
-- the new one hands out and cannot commit into it.
CREATE TABLE {schema}.subscription_epochs (
	name  text COLLATE "C" NOT NULL,
	epoch bigint           NOT NULL,
	CONSTRAINT subscription_epochs_pkey PRIMARY KEY (name)
);
