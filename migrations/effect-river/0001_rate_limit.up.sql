-- effect-river's own migration line (`effect-river` in river_migration): state that River's
-- schema has no place for. River's migrator reads only line `main` and leaves this one alone, as
-- it does River Pro's lines.
--
-- Rate limits (`queues.<name>.rateLimit`): job starts per queue, partition and time bucket (a
-- twentieth of the limit's window; `bucket_at` is the bucket's start in epoch milliseconds). A
-- fetch counts the starts of the buckets that overlap the window ending now, and deletes the
-- buckets that no longer do. UNLOGGED: losing the table in a crash only forgets how much of the
-- current window was used.
CREATE UNLOGGED TABLE IF NOT EXISTS /* TEMPLATE: schema */effect_river_rate_limit (
    queue text NOT NULL,
    partition text NOT NULL,
    bucket_at double precision NOT NULL,
    starts integer NOT NULL,
    CONSTRAINT effect_river_rate_limit_pkey PRIMARY KEY (queue, partition, bucket_at)
);
