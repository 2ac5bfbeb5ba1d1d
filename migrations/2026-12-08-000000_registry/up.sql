-- The registry of relying parties and identity providers, changed at run time through
-- the admin API and seeded from the configuration file.
--
-- `document` is the entry's settings as JSON (the same fields as its configuration
-- section). `revision` is the registry's revision at which the entry last changed: every
-- change bumps `registry_revision` in the same transaction, so an instance learns that
-- something changed by reading one row, and a writer can refuse to overwrite a change it
-- has not seen (compare-and-swap on the entry's revision).
CREATE TABLE registry_entries (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    document TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    revision BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE registry_revision (
    id INTEGER PRIMARY KEY,
    revision BIGINT NOT NULL
);

INSERT INTO registry_revision (id, revision) VALUES (1, 0);
