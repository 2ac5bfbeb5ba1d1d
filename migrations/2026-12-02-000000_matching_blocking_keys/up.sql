-- Blocking keys for candidate retrieval (portable SQL, like every migration
-- here). A department record is stored under several keys (the matching
-- crate's `record_blocking_keys`: date of birth, phonetic surname + birth
-- year, postcode + phonetic surname); a query looks up its own keys and every
-- record sharing one is a candidate. Keys are derived from personal data:
-- they live next to the records and are never logged.
--
-- The primary key serves the lookup: (rp_id, blocking_key) is an index range
-- whose entries already carry the record ids, so a query reads only the
-- matching entries.
CREATE TABLE department_record_keys (
    rp_id TEXT NOT NULL,
    blocking_key TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (rp_id, blocking_key, record_id)
);

-- Re-importing a record replaces its keys: this index finds the old ones
-- without reading the table.
CREATE INDEX department_record_keys_record ON department_record_keys (rp_id, record_id);

-- 1 once the record's keys are in department_record_keys, 0 while they still
-- have to be derived. Rows that exist now get 0: the hub (`Database::migrate`,
-- right after the migrations) derives their keys in batches and sets 1; an
-- import writes 1 with the keys in the same transaction. A later change of
-- the key scheme is a migration that sets 0 everywhere. INTEGER, not BOOLEAN,
-- so the same literals work on both backends.
ALTER TABLE department_records ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;

-- Only rows still waiting for their keys: empty once the backfill is done, so
-- checking for work at every start-up is one probe of an empty index.
CREATE INDEX department_records_unkeyed ON department_records (rp_id, record_id) WHERE keyed = 0;

-- The date of birth is now one key among others (`d:YYYY-MM-DD`); the column
-- and its index were the previous, single blocking pass.
DROP INDEX department_records_rp_dob;
ALTER TABLE department_records DROP COLUMN date_of_birth;
