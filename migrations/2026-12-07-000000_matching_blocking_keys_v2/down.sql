-- Back to the previous key scheme: the older hub finds a record's keys through
-- this index, and derives every record's keys again at start-up, in its own
-- scheme.
CREATE INDEX department_record_keys_record ON department_record_keys (rp_id, record_id);
DELETE FROM department_record_keys;
UPDATE department_records SET keyed = 0;
