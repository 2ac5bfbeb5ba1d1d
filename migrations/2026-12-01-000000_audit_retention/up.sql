-- Retention for the audit log: events older than the retention period can be
-- pruned (`hub audit prune`, only after an archived, signed export of them was
-- written) without breaking the Merkle tree.
--
-- A pruned event keeps its row: seq, id, time, max_time, event_type and
-- leaf_hash stay, so every node, root, checkpoint and proof (which need only
-- hashes) is unchanged, and the self-check still recomputes the tree from the
-- stored leaf hashes. It loses what identifies people: `body` becomes '' and
-- journey_id, rp_id, idp_id and outcome become NULL (pruned rows thereby drop
-- out of those indexes' ranges). `pruned` is 1 for such rows, 0 otherwise
-- (existing rows get 0): INTEGER rather than BOOLEAN, so that the same
-- literals (`pruned = 0`) work on both backends, in psql and sqlite3 alike.
ALTER TABLE audit_events ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;

-- Pruning always removes the oldest events (every seq below a bound), so the
-- pruned rows are exactly seqs 0..pruned_below. Reads start their seq range at
-- this bound: a page then never walks over millions of pruned rows to find
-- the first visible one (a filter on `pruned` alone cannot be an index range
-- for every query), and the self-check can tell a retention prune from a
-- single event blanked out of the middle of the log.
ALTER TABLE audit_head ADD COLUMN pruned_below BIGINT NOT NULL DEFAULT 0;
