-- No-op, like River's: version 8 changes nothing on PostgreSQL.
SELECT 1;
