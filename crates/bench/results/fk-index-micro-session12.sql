-- Session 12: the cost of executions' job_id foreign key and organization index, on a
-- database kept by `punctual-bench --keep w1 --jobs 20000` (PostgreSQL). Changes its schema:
-- run on a scratch database only. psql -v drop_org=0|1 -v drop_fk=0|1 -f fk-index-micro.sql
\set ON_ERROR_STOP on
\timing on
\if :drop_org
BEGIN; DROP INDEX IF EXISTS ix_executions_organization_id_created_at; COMMIT;
\else
CREATE INDEX IF NOT EXISTS ix_executions_organization_id_created_at ON executions (organization_id, created_at);
\endif
\if :drop_fk
ALTER TABLE executions DROP CONSTRAINT IF EXISTS fk_executions_job_id;
\else
ALTER TABLE executions DROP CONSTRAINT IF EXISTS fk_executions_job_id;
ALTER TABLE executions ADD CONSTRAINT fk_executions_job_id FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE;
\endif
DROP TABLE IF EXISTS newids;
CREATE TABLE newids AS
SELECT (lpad(to_hex((extract(epoch from clock_timestamp())*1000)::bigint + n), 12, '0') || substr(md5(random()::text), 1, 20))::uuid AS id, j.id AS job_id, j.organization_id
FROM (SELECT id, organization_id, row_number() OVER () AS n FROM jobs) j;
CHECKPOINT;
BEGIN;
SELECT count(*) FROM (SELECT 1 FROM jobs FOR UPDATE) locked;
SELECT 'insert' AS step;
INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, node_id, lease_expires_at, created_at)
SELECT id, organization_id, job_id, now() + interval '1 day', 1, 'schedule', 'running', now(), now(), 'node-x', now() + interval '1 minute', now() FROM newids;
COMMIT;
SELECT 'update' AS step;
UPDATE executions e SET status = 'success', finished_at = now(), duration_ms = 1, lag_ms = 1, status_code = 200, lease_expires_at = NULL FROM newids n WHERE e.id = n.id;
DELETE FROM executions e USING newids n WHERE e.id = n.id;
