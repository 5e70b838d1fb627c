-- River's version 8 rebuilds river_job on SQLite so that generated job ids are never reused
-- (AUTOINCREMENT). On PostgreSQL the id sequence already guarantees that, and River's file is a
-- no-op: so is this one. It only records version 8, so River (v0.48+) and effect-river agree on
-- the latest version.
SELECT 1;
