-- 10: replay requests (issue 15). An admin tool, another process than the
-- application's, cannot run a subscription's handler: it marks a parked
-- event with the time of its request (NULL for none), and a running member
-- of the subscription replays it at its next lease renewal. The partial
-- index keeps that member's look for requests, made at every renewal, to
-- a probe of the requested rows only.
ALTER TABLE {schema}.subscription_parked ADD COLUMN replay_requested timestamptz;
CREATE INDEX subscription_parked_replay ON {schema}.subscription_parked (name, position) WHERE replay_requested IS NOT NULL;
