-- A re-import now deletes the keys a record was written under by the primary
-- key, deriving them again from the stored dataset (the matching crate's
-- `record_blocking_keys`): an index by record doubled the cost of every
-- import. Keys written before this migration may be of an older scheme, which
-- cannot be derived any more, so they all go and `keyed = 0` makes the hub's
-- start-up backfill (`Database::migrate`) write every record's keys again.
-- A later change of key scheme must do the same: delete every key when it
-- resets `keyed`.
DELETE FROM department_record_keys;
UPDATE department_records SET keyed = 0;
DROP INDEX department_record_keys_record;
