-- DPM's engine registry (SPEC 9): one row per engine, kept as the product keeps it, and one lease
-- row per live DPM replica. An engine is checked by its owner while the owner's lease holds;
-- engines of a replica whose lease expired are claimed by the others.
CREATE TABLE dpm_engine (
    id                       TEXT PRIMARY KEY,
    hostname                 TEXT NOT NULL,
    port                     INTEGER NOT NULL,
    -- The encoded ataccama.dppapi.constraint.Constraints, whole, as received.
    constraints              BYTEA NOT NULL,
    status                   TEXT NOT NULL,
    status_since             TIMESTAMPTZ NOT NULL,
    registered_by            TEXT NOT NULL,
    registered_by_deployment TEXT NOT NULL,
    created                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_registered          TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen                TIMESTAMPTZ,
    -- The replica that checks it (dpm_replica.id); NULL: unowned, any replica may claim it.
    owner                    TEXT
);

CREATE INDEX dpm_engine_owner ON dpm_engine (owner);

CREATE TABLE dpm_replica (
    id         TEXT PRIMARY KEY,
    started    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The lease: renewed by the replica every tick; past it, the replica's engines are claimable.
    expires_at TIMESTAMPTZ NOT NULL
);
