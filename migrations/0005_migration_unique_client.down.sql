-- Back to the history table keyed by id. Irreversible while rows of other migration lines
-- exist: the old shape cannot hold them, and they must not be lost.
DO $migration$
BEGIN
    IF to_regclass('/* TEMPLATE: schema */river_migration') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM /* TEMPLATE: schema */river_migration WHERE line <> 'main') THEN
            RAISE EXCEPTION 'river_migration holds rows of migration lines other than main; reverting version 5 would lose them';
        END IF;

        ALTER TABLE /* TEMPLATE: schema */river_migration RENAME TO river_migration_old;

        CREATE TABLE /* TEMPLATE: schema */river_migration (
            id bigserial,
            created_at timestamptz NOT NULL DEFAULT now(),
            version bigint NOT NULL,
            CONSTRAINT river_migration_pkey PRIMARY KEY (id),
            CONSTRAINT version CHECK (version >= 1)
        );

        CREATE UNIQUE INDEX river_migration_version_idx
            ON /* TEMPLATE: schema */river_migration USING btree (version);

        INSERT INTO /* TEMPLATE: schema */river_migration (created_at, version)
        SELECT created_at, version
        FROM /* TEMPLATE: schema */river_migration_old
        ORDER BY version;

        DROP TABLE /* TEMPLATE: schema */river_migration_old;
    END IF;
END;
$migration$;

-- Also drops river_job_kind_unique_key_idx.
ALTER TABLE /* TEMPLATE: schema */river_job DROP COLUMN unique_key;

DROP TABLE /* TEMPLATE: schema */river_client_queue;
DROP TABLE /* TEMPLATE: schema */river_client;
