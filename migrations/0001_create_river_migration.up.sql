-- River's original history table, keyed by a surrogate id. Version 5 rebuilds it keyed by
-- (line, version); the migrator records versions 1-4 in this shape.
CREATE TABLE /* TEMPLATE: schema */river_migration (
    id bigserial,
    created_at timestamptz NOT NULL DEFAULT now(),
    version bigint NOT NULL,
    CONSTRAINT river_migration_pkey PRIMARY KEY (id),
    CONSTRAINT version CHECK (version >= 1)
);

CREATE UNIQUE INDEX river_migration_version_idx
    ON /* TEMPLATE: schema */river_migration USING btree (version);
