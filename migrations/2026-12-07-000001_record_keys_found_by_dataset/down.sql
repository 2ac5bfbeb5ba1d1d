-- The older hub finds a record's keys through this index; it derives every
-- record's keys again at start-up.
CREATE INDEX department_record_keys_record ON department_record_keys (rp_id, record_id);
UPDATE department_records SET keyed = 0;
