-- 7: replay requests (issue 15). An admin tool, another process than the
-- application's, cannot run a subscription's handler: it marks a parked
-- event with the time of its request (Unix nanoseconds, 0 for none), and
-- a running member of the subscription replays it at its next lease
-- renewal. The partial index keeps that member's look for requests, made
-- at every renewal, to a probe of the requested rows only.
ALTER TABLE subscription_parked ADD COLUMN replay_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS subscription_parked_replay ON subscription_parked (name, position) WHERE replay_requested != 0;
