-- The audit log: an append-only, hash-chained record of what the hub did
-- (RFC 9162 Merkle tree over the events), portable like every migration here.
--
-- Hashes are stored as lowercase hexadecimal TEXT (64 characters), not as
-- BLOB (SQLite) or BYTEA (PostgreSQL): one column type works on both
-- backends, diesel maps it the same way on both, and a tampered value is
-- readable in psql/sqlite3 without conversion functions.

-- One row per event. `seq` is the event's leaf index in the tree: gapless from
-- 0, assigned under the lock on `audit_head`. `body` is the event's canonical
-- JSON exactly as hashed (`leaf_hash` = SHA-256(0x00 || body)); the other
-- columns are copies of body fields for the auditors' filters, `time`
-- normalised to RFC 3339 UTC with milliseconds so that text order is time
-- order. `max_time` is the latest `time` among events 0..=seq: unlike `time`
-- (instances stamp events before they append them, so neighbours can be out
-- of order) it never decreases along seq, which turns a time range into a seq
-- range (see audit_head.max_lag_ms).
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    max_time TEXT NOT NULL,
    journey_id TEXT,
    event_type TEXT NOT NULL,
    rp_id TEXT,
    idp_id TEXT,
    outcome TEXT,
    body TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
);

-- Auditor queries return events in seq order, a page at a time (seq > cursor,
-- LIMIT n). An equality filter followed by seq lets the database walk one
-- index range in order and stop after n rows, however large the log.
CREATE INDEX audit_events_rp_seq ON audit_events (rp_id, seq);
CREATE INDEX audit_events_journey_seq ON audit_events (journey_id, seq);
CREATE INDEX audit_events_type_seq ON audit_events (event_type, seq);
CREATE INDEX audit_events_idp_seq ON audit_events (idp_id, seq);
CREATE INDEX audit_events_outcome_seq ON audit_events (outcome, seq);
-- Time ranges: one descent each finds the first seq whose max_time reaches
-- the range's start (and its end plus the largest lag); the page then walks
-- the primary key (or one of the indexes above) within those seqs only.
CREATE INDEX audit_events_max_time ON audit_events (max_time, seq);

-- Hashes of the complete subtrees above the leaves: node (level, idx) covers
-- leaves [idx * 2^level, (idx + 1) * 2^level); level >= 1 only (level 0 is
-- audit_events.leaf_hash). Written once, when the subtree's last leaf is
-- appended, so any root or proof needs O(log n) reads.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (audit::Checkpoint): `root_hash` base64 as signed.
CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    time TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- The log's size: a single row, locked by every append so that appends from
-- all hub instances are serialised into one gapless order. `max_time` is the
-- last event's `max_time` (NULL while empty); `max_lag_ms` the largest
-- `max_time - time` of any event, in milliseconds: an event before instant T
-- therefore has max_time < T + max_lag_ms.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    size BIGINT NOT NULL,
    max_time TEXT,
    max_lag_ms BIGINT NOT NULL
);

INSERT INTO audit_head (id, size, max_time, max_lag_ms) VALUES (1, 0, NULL, 0);
