DROP TABLE registry_revision;
DROP TABLE registry_entries;
