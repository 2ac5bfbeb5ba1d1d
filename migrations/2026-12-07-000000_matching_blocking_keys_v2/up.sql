-- The blocking key scheme changed (the matching crate's `record_blocking_keys`:
-- date of birth; phonetic surname + birth year and month; postcode + phonetic
-- surname; postcode + first-name initial; phonetic surname + phonetic first
-- name + birth decade), so that one or two wrong fields never hide a record.
-- Every record's keys are derived again: the old keys go, and `keyed = 0`
-- makes the hub's start-up backfill (`Database::migrate`) write each record's
-- new keys in batches.
DELETE FROM department_record_keys;
UPDATE department_records SET keyed = 0;

-- A re-import deletes the keys a record was written under by the primary key,
-- deriving them again from the stored dataset: an index by record would double
-- the cost of every import. So a change of key scheme must, like this one,
-- delete every key when it resets `keyed`.
DROP INDEX department_record_keys_record;
