-- Portable SQL: this one migrations directory serves SQLite and PostgreSQL
-- alike (TEXT, BIGINT, composite primary keys, plain indexes; no
-- backend-specific types, defaults or syntax). Keep later migrations so.

-- Department records: one row per (relying party, department record id).
-- `dataset` holds the record's matching dataset as JSON (the matching crate's
-- MatchingDataset); `date_of_birth` is its normalised blocking key (YYYY-MM-DD)
-- so candidate retrieval reads only the records sharing the query's birth date.
CREATE TABLE department_records (
    rp_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    date_of_birth TEXT,
    dataset TEXT NOT NULL,
    PRIMARY KEY (rp_id, record_id)
);

CREATE INDEX department_records_rp_dob ON department_records (rp_id, date_of_birth);

-- Record links (matching cycle 0): which department record an IdP subject was
-- matched to before, per relying party. No foreign key to department_records:
-- the record may live in a remote matching service rather than this database.
CREATE TABLE record_links (
    rp_id TEXT NOT NULL,
    idp_id TEXT NOT NULL,
    idp_subject TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (rp_id, idp_id, idp_subject)
);
