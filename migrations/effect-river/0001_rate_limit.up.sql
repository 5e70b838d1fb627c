-- effect-river's own migration line (`effect-river` in river_migration): state that River's
-- schema has no place for. River's migrator reads only line `main` and leaves this one alone, as
-- it does River Pro's lines.
--
-- Rate limits (`queues.<name>.rateLimit`): one row per queue and partition with GCRA's
-- theoretical arrival time in epoch milliseconds. Rows whose time has passed carry no state and
-- are deleted by the fetch that next writes the queue's rows. UNLOGGED: losing the table in a
-- crash only forgets how much of the current window was used.
CREATE UNLOGGED TABLE IF NOT EXISTS /* TEMPLATE: schema */effect_river_rate_limit (
    queue text NOT NULL,
    partition text NOT NULL,
    tat double precision NOT NULL,
    CONSTRAINT effect_river_rate_limit_pkey PRIMARY KEY (queue, partition)
);
