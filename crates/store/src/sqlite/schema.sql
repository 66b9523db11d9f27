-- Roster's SQLite schema, version 1. Applied once to an empty database
-- (PRAGMA user_version tracks the applied version).

-- Versions 3 and 4 (conn.rs) add `deactivation` and `custom_attributes`.
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
    revoked_at    INTEGER,
    -- Set when the token is rotated: it keeps working until then, so the
    -- identity provider can switch to the new token without a failed sync.
    expires_at    INTEGER
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
-- equality or prefix (emails.value, phoneNumbers.value). Version 17
-- (conn.rs) drops it: `attr_index` holds these values.
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

-- Replies remembered under an Idempotency-Key: a retried request gets the
-- stored reply instead of being applied twice.
CREATE TABLE idempotency_keys (
    directory_id  TEXT NOT NULL REFERENCES directories(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    response      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (directory_id, key)
) WITHOUT ROWID;

-- The event outbox: every change's event, written in the change's transaction.
-- One writer assigns `seq` in commit order, so a reader following `seq` never
-- skips an event that commits later.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    directory_id  TEXT NOT NULL,
    type          TEXT NOT NULL,
    data          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_directory ON events(directory_id, seq);

-- Admin API keys: stored as SHA-256 digests, shown once.
CREATE TABLE admin_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Webhook endpoints. Each keeps its own cursor into `events`; a lease
-- (owner, until) makes one dispatcher at a time deliver to an endpoint, so
-- several Roster processes never send one event to one endpoint concurrently.
CREATE TABLE webhook_endpoints (
    id             TEXT PRIMARY KEY,
    url            TEXT NOT NULL,
    secret         TEXT NOT NULL,
    event_types    TEXT NOT NULL,             -- JSON array; empty = every type
    directory_id   TEXT,                      -- NULL = every directory
    enabled        INTEGER NOT NULL DEFAULT 1,
    state          TEXT NOT NULL DEFAULT 'healthy',
    cursor         INTEGER NOT NULL,          -- last event seq handled
    attempts       INTEGER NOT NULL DEFAULT 0, -- failed attempts at the event after cursor
    first_failure  INTEGER,                   -- when that event first failed (ms)
    retry_at       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until    INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id    TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_seq      INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    status         TEXT NOT NULL,             -- succeeded | retrying | failed
    response_code  INTEGER,
    latency_ms     INTEGER NOT NULL,
    error          TEXT,
    created_at     INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);

-- Events an operator asked to send again, ahead of the endpoint's cursor.
CREATE TABLE webhook_redeliveries (
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_seq    INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, event_seq)
) WITHOUT ROWID;

-- Small named values the store keeps about itself (e.g. how far events were pruned).
CREATE TABLE store_meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
