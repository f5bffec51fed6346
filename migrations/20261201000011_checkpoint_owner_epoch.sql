-- Fencing: the epoch of a subscription's current owner, kept with its
-- checkpoint. Taking ownership bumps it; every effect a subscription
-- commits (a projection batch, a reactor's checkpoint, a parked event)
-- moves or confirms the checkpoint *with the epoch it took*, in the same
-- transaction, so a stale owner's commit matches no row and fails.
ALTER TABLE subscription_checkpoints
    ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
