-- Reverting keeps pruned rows as they are (bodies cannot be restored): the
-- self-check of an older hub would then report them as altered events.
ALTER TABLE audit_head DROP COLUMN pruned_below;
ALTER TABLE audit_events DROP COLUMN pruned;
