-- The blocking key scheme changed (the matching crate's `record_blocking_keys`:
-- date of birth; phonetic surname + birth year and month; postcode + phonetic
-- surname; postcode + first-name initial; phonetic surname + phonetic first
-- name + birth decade), so that one or two wrong fields never hide a record.
-- Every record's keys are derived again: `keyed = 0` makes the hub's start-up
-- backfill (`Database::migrate`) replace each record's keys in batches.
UPDATE department_records SET keyed = 0;
