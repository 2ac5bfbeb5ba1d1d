DROP TABLE record_links;
DROP INDEX department_records_rp_dob;
DROP TABLE department_records;
