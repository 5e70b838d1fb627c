-- Notification outbox polled by River's SQLite driver in place of LISTEN/NOTIFY. Unused on
-- PostgreSQL, but part of the shared schema.
CREATE TABLE /* TEMPLATE: schema */river_notification (
    id bigserial,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL,
    topic text NOT NULL,
    CONSTRAINT river_notification_pkey PRIMARY KEY (id),
    CONSTRAINT topic_length CHECK (length(topic) > 0 AND length(topic) < 128)
);

CREATE INDEX river_notification_created_at_idx
    ON /* TEMPLATE: schema */river_notification (created_at);

CREATE INDEX river_notification_topic_id_idx
    ON /* TEMPLATE: schema */river_notification (topic, id);

-- Never used since version 5.
DROP TABLE IF EXISTS /* TEMPLATE: schema */river_client_queue;
DROP TABLE IF EXISTS /* TEMPLATE: schema */river_client;

ALTER TABLE /* TEMPLATE: schema */river_job ALTER COLUMN max_attempts SET DEFAULT 25;

ALTER TABLE /* TEMPLATE: schema */river_queue ALTER COLUMN updated_at SET DEFAULT CURRENT_TIMESTAMP;
