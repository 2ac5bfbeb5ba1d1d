-- Back to the single date-of-birth blocking pass. The column is restored from
-- each record's `d:` key (a record is stored under exactly one), so records
-- keyed by this version stay candidates for the older hub.
ALTER TABLE department_records ADD COLUMN date_of_birth TEXT;

UPDATE department_records SET date_of_birth = (
    SELECT substr(k.blocking_key, 3) FROM department_record_keys k
    WHERE k.rp_id = department_records.rp_id
      AND k.record_id = department_records.record_id
      AND k.blocking_key LIKE 'd:%'
    ORDER BY k.blocking_key
    LIMIT 1
);

CREATE INDEX department_records_rp_dob ON department_records (rp_id, date_of_birth);

DROP INDEX department_records_unkeyed;
ALTER TABLE department_records DROP COLUMN keyed;

DROP INDEX department_record_keys_record;
DROP TABLE department_record_keys;
