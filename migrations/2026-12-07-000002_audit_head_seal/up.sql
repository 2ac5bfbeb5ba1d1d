-- The log's head, signed: every append writes, in the same transaction, a
-- checkpoint (audit::Checkpoint as JSON, signed with the hub's key) of the
-- size and root it leaves. Rows rewritten, appended or deleted behind the
-- hub's back then no longer match a signature, however consistently the tree
-- was recomputed; and the next append, which checks the seal it extends,
-- refuses to build on them. NULL only while the log is empty, or for a log
-- written before this migration until the hub seals it at start-up.
ALTER TABLE audit_head ADD COLUMN seal TEXT;
