-- Rebuild river_migration keyed by (line, version) so that other migration lines can share it.
-- Tolerates a missing table: users who run these files through their own migration tool may
-- have skipped version 1.
DO $migration$
BEGIN
    IF to_regclass('/* TEMPLATE: schema */river_migration') IS NOT NULL THEN
        ALTER TABLE /* TEMPLATE: schema */river_migration RENAME TO river_migration_old;

        -- The old table still holds the index river_migration_pkey, so River's rebuilt table
        -- ended up with river_migration_pkey1; name it explicitly to match.
        CREATE TABLE /* TEMPLATE: schema */river_migration (
            line text NOT NULL,
            version bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT river_migration_pkey1 PRIMARY KEY (line, version),
            CONSTRAINT line_length CHECK (char_length(line) > 0 AND char_length(line) < 128),
            CONSTRAINT version_gte_1 CHECK (version >= 1)
        );

        INSERT INTO /* TEMPLATE: schema */river_migration (created_at, line, version)
        SELECT created_at, 'main', version
        FROM /* TEMPLATE: schema */river_migration_old;

        DROP TABLE /* TEMPLATE: schema */river_migration_old;
    END IF;
END;
$migration$;

-- IF NOT EXISTS lets operators of large tables build the index CONCURRENTLY beforehand.
ALTER TABLE /* TEMPLATE: schema */river_job ADD COLUMN IF NOT EXISTS unique_key bytea;

CREATE UNIQUE INDEX IF NOT EXISTS river_job_kind_unique_key_idx
    ON /* TEMPLATE: schema */river_job (kind, unique_key)
    WHERE unique_key IS NOT NULL;

-- Reserved by River for client tracking; never used, dropped again by version 7.
CREATE UNLOGGED TABLE /* TEMPLATE: schema */river_client (
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    metadata jsonb NOT NULL DEFAULT '{}',
    paused_at timestamptz,
    updated_at timestamptz NOT NULL,
    CONSTRAINT river_client_pkey PRIMARY KEY (id),
    CONSTRAINT name_length CHECK (char_length(id) > 0 AND char_length(id) < 128)
);

CREATE UNLOGGED TABLE /* TEMPLATE: schema */river_client_queue (
    river_client_id text NOT NULL REFERENCES /* TEMPLATE: schema */river_client (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    max_workers bigint NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    num_jobs_completed bigint NOT NULL DEFAULT 0,
    num_jobs_running bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL,
    CONSTRAINT river_client_queue_pkey PRIMARY KEY (river_client_id, name),
    CONSTRAINT name_length CHECK (char_length(name) > 0 AND char_length(name) < 128),
    CONSTRAINT num_jobs_completed_zero_or_positive CHECK (num_jobs_completed >= 0),
    CONSTRAINT num_jobs_running_zero_or_positive CHECK (num_jobs_running >= 0)
);
