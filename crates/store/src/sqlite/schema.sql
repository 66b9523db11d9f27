-- Roster's SQLite schema, version 1. Applied once to an empty database
-- (PRAGMA user_version tracks the applied version).

CREATE TABLE directories (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    directory_id  TEXT NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX tokens_directory ON tokens(directory_id);

-- One row per User or Group. `doc` is the canonical SCIM document without
-- id, meta and members (members are rows of group_members). Columns beside
-- the document hold what filters, sorting, paging and uniqueness need indexed.
CREATE TABLE resources (
    id             TEXT PRIMARY KEY,
    directory_id   TEXT NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
    rtype          INTEGER NOT NULL,          -- 1 User, 2 Group
    name_key       TEXT NOT NULL,             -- folded userName / displayName: uniqueness and lookups
    display        TEXT NOT NULL,             -- what members[].display and groups[].display show
    external_id    TEXT,
    doc            TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created        INTEGER NOT NULL,          -- Unix milliseconds
    last_modified  INTEGER NOT NULL           -- Unix milliseconds
);
CREATE UNIQUE INDEX resources_by_type ON resources(directory_id, rtype, id);
CREATE UNIQUE INDEX resources_name ON resources(directory_id, rtype, name_key);
-- Version 2 (conn.rs) adds id to resources_external.
CREATE INDEX resources_external ON resources(directory_id, rtype, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX resources_modified ON resources(directory_id, rtype, last_modified, id);

-- Folded values of multi-valued sub-attributes that filters look up by
-- equality or prefix (emails.value, phoneNumbers.value), so that
-- `emails.value eq "x"` is an index lookup, not a scan of the directory.
CREATE TABLE resource_values (
    directory_id  TEXT NOT NULL,
    attr          TEXT NOT NULL,
    value         TEXT NOT NULL,
    resource_id   TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE
);
CREATE INDEX resource_values_lookup ON resource_values(directory_id, attr, value);
CREATE INDEX resource_values_owner ON resource_values(resource_id);

-- Membership as rows: adding or removing one member is one row, whatever the group size.
CREATE TABLE group_members (
    directory_id  TEXT NOT NULL,
    group_id      TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    member_id     TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    member_type   INTEGER NOT NULL,           -- 1 User, 2 Group
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members(member_id, group_id);
