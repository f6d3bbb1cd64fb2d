-- Session 13: what PostgreSQL spends per execution for the write paths an engine could take,
-- measured server-side (the backend's CPU from /proc) with the engine and the HTTP request
-- taken out. Run on a scratch copy of a database kept by
-- `punctual-bench w1 --jobs 100 --keep` (PostgreSQL): it adds columns and tables.
--
--   createdb -h 127.0.0.1 -U postgres -T punctual_bench_<kept> pb_micro
--   psql -h 127.0.0.1 -U postgres -d pb_micro -f write-paths-micro-session13.sql
--   then, for each design X in a a2 b c d e, in rounds (the machine drifts):
--   psql -d pb_micro -c 'CALL micro_reset(20000)' -c 'VACUUM ANALYZE' -c CHECKPOINT
--   psql -d pb_micro  # SELECT pg_backend_pid(); read utime+stime of /proc/<pid>/stat,
--                     # CALL micro_X(500); read them again; divide by 20,000
--
-- Each procedure drains 20,000 once-jobs due now in batches of 500 (the engine's
-- dispatch_batch), committing after dispatch and after recording as the engine does:
--   a  the engine's path today: lock due jobs, next_run_at, insert the running execution
--      (5 index entries) | outcome update (not HOT: status is in the queue indexes'
--      predicates, so 4 index entries again), once-job completion
--   a2 a, with the lock and the next_run_at update in one UPDATE … WHERE id IN (… FOR UPDATE)
--   b  a, with the queue state moved to its own table so the outcome update can be HOT
--      (executions at fillfactor 75, no status-dependent index; queue row inserted and deleted)
--   c  the lease on the job row (the update dispatch writes anyway) and the execution
--      inserted once, finished; no running row, no outcome update
--   e  one claim row per dispatched batch as the durable lease; executions inserted once, finished
--   d  the floor without history, as graphile-worker does: lock the job, then delete it
--
-- Results (2 vCPU AMD EPYC, PostgreSQL 15.20 stock, 2026-12-04 ~17:00 UTC; µs of backend
-- CPU per execution, rounds interleaved; the machine's speed drifted by ~15% meanwhile):
--   a  72 63 74 | 85 91 95 | 91 86 92 | 83 90 92     (median 88)
--   a2 101 107 106                                   (worse than a: the IN (subquery) plan)
--   b  100 108 110 | 98 96 107                       (median 103: worse than a)
--   c  48 51 52 | 58 72 64 | 61 67 53 | 53 62 50     (median 56: 0.64 × a)
--   e  64 65 64                                      (0.72 × a)
--   d  26 32 31 | 39 44 47 | 39 37 35                (median 37: 0.42 × a)

CREATE SEQUENCE IF NOT EXISTS micro_seq;
-- Time-ordered ids, like the engine's UUIDv7 (random ones would scatter the index inserts).
CREATE OR REPLACE FUNCTION micro_id() RETURNS uuid LANGUAGE sql AS $$
  SELECT (lpad(to_hex(floor(extract(epoch from clock_timestamp())*1000)::bigint),12,'0') || '7' || lpad(to_hex(nextval('micro_seq')),19,'0'))::uuid $$;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_node text, ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz, ADD COLUMN IF NOT EXISTS lease_execution uuid;
CREATE INDEX IF NOT EXISTS ix_jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE OR REPLACE PROCEDURE micro_a(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[]; eids uuid[];
BEGIN LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) s;
  EXIT WHEN ids IS NULL;
  UPDATE jobs SET next_run_at = NULL WHERE id = ANY(ids);
  WITH ins AS (INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, lag_ms, node_id, lease_expires_at, created_at)
    SELECT micro_id(), organization_id, id, run_at, 1, 'schedule', 'running', run_at, now(), 5, 'node-x', now() + interval '30 s', now() FROM jobs WHERE id = ANY(ids) ORDER BY id RETURNING id)
  SELECT array_agg(id) INTO eids FROM ins;
  COMMIT;
  UPDATE executions SET status = 'success', finished_at = clock_timestamp(), duration_ms = 3, status_code = 200, response_body = 'ok', lease_expires_at = NULL
   WHERE id = ANY(eids) AND status = 'running' AND node_id = 'node-x';
  UPDATE jobs SET completed_at = now(), next_run_at = NULL WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;
-- lease on the job row at dispatch; the execution inserted once, finished
CREATE OR REPLACE PROCEDURE micro_c(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[];
BEGIN LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) s;
  EXIT WHEN ids IS NULL;
  UPDATE jobs SET next_run_at = NULL, lease_node = 'node-x', lease_expires_at = now() + interval '30 s', lease_execution = micro_id() WHERE id = ANY(ids);
  COMMIT;
  INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, finished_at, duration_ms, lag_ms, status_code, response_body, node_id, created_at)
    SELECT lease_execution, organization_id, id, run_at, 1, 'schedule', 'success', run_at, now(), clock_timestamp(), 3, 5, 200, 'ok', 'node-x', now() FROM jobs WHERE id = ANY(ids) ORDER BY id;
  UPDATE jobs SET completed_at = now(), lease_node = NULL, lease_expires_at = NULL, lease_execution = NULL WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;
-- floor: graphile-like, no history (lock row, then delete it)
CREATE OR REPLACE PROCEDURE micro_d(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[];
BEGIN LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) s;
  EXIT WHEN ids IS NULL;
  UPDATE jobs SET lease_node = 'node-x', lease_expires_at = now() + interval '30 s' WHERE id = ANY(ids);
  COMMIT;
  DELETE FROM jobs WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;

-- B: executions without status-dependent indexes (outcome update can be HOT), queue state in its own table
DROP TABLE IF EXISTS exb_queue; DROP TABLE IF EXISTS executions_b;
CREATE TABLE executions_b (LIKE executions INCLUDING DEFAULTS) WITH (fillfactor = 75);
ALTER TABLE executions_b ADD PRIMARY KEY (id);
ALTER TABLE executions_b ADD CONSTRAINT fk_exb_job FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE CASCADE;
CREATE INDEX ON executions_b (job_id, created_at, id);
CREATE INDEX ON executions_b (organization_id, created_at);
CREATE UNIQUE INDEX ON executions_b (job_id, scheduled_for, attempt);
CREATE TABLE exb_queue (execution_id uuid PRIMARY KEY REFERENCES executions_b(id) ON DELETE CASCADE, state text NOT NULL, run_after timestamptz NOT NULL, node_id text, lease_expires_at timestamptz);
CREATE INDEX ON exb_queue (run_after) WHERE state = 'pending';
CREATE INDEX ON exb_queue (lease_expires_at) WHERE state = 'running';

CREATE OR REPLACE PROCEDURE micro_b(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[]; eids uuid[];
BEGIN LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) s;
  EXIT WHEN ids IS NULL;
  UPDATE jobs SET next_run_at = NULL WHERE id = ANY(ids);
  WITH ins AS (INSERT INTO executions_b (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, lag_ms, node_id, lease_expires_at, created_at)
    SELECT micro_id(), organization_id, id, run_at, 1, 'schedule', 'running', run_at, now(), 5, 'node-x', now() + interval '30 s', now() FROM jobs WHERE id = ANY(ids) ORDER BY id RETURNING id)
  SELECT array_agg(id) INTO eids FROM ins;
  INSERT INTO exb_queue SELECT unnest(eids), 'running', now(), 'node-x', now() + interval '30 s';
  COMMIT;
  WITH gone AS (DELETE FROM exb_queue WHERE execution_id = ANY(eids) AND state = 'running' AND node_id = 'node-x' RETURNING execution_id)
  UPDATE executions_b SET status = 'success', finished_at = clock_timestamp(), duration_ms = 3, status_code = 200, response_body = 'ok', lease_expires_at = NULL
   WHERE id IN (SELECT execution_id FROM gone);
  UPDATE jobs SET completed_at = now(), next_run_at = NULL WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;

CREATE OR REPLACE PROCEDURE micro_reset(n int) LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM exb_queue; DELETE FROM executions_b; DELETE FROM executions; DELETE FROM jobs WHERE name = 'micro';
  INSERT INTO jobs (id, organization_id, name, url, method, headers, timeout_ms, schedule_kind, timezone, run_at, retry_max_attempts, retry_min_backoff_ms, retry_max_backoff_ms, concurrency, missed_runs, catch_up_grace_ms, enabled, next_run_at, consecutive_failures, created_at, updated_at)
  SELECT micro_id(), o.id, 'micro', 'http://127.0.0.1:1/hook/' || g, 'GET', '{}', 5000, 'once', 'UTC', now(), 3, 100, 1000, 'allow', 'skip', 3600000, true, now(), 0, now(), now()
  FROM generate_series(1, n) g, (SELECT id FROM organizations LIMIT 1) o;
END $$;

-- A2: as A, but the once-jobs' lock and next_run_at update are one statement
CREATE OR REPLACE PROCEDURE micro_a2(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[]; eids uuid[];
BEGIN LOOP
  WITH locked AS (UPDATE jobs SET next_run_at = NULL WHERE id IN (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) RETURNING id)
  SELECT array_agg(id) INTO ids FROM locked;
  EXIT WHEN ids IS NULL;
  WITH ins AS (INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, lag_ms, node_id, lease_expires_at, created_at)
    SELECT micro_id(), organization_id, id, run_at, 1, 'schedule', 'running', run_at, now(), 5, 'node-x', now() + interval '30 s', now() FROM jobs WHERE id = ANY(ids) ORDER BY id RETURNING id)
  SELECT array_agg(id) INTO eids FROM ins;
  COMMIT;
  UPDATE executions SET status = 'success', finished_at = clock_timestamp(), duration_ms = 3, status_code = 200, response_body = 'ok', lease_expires_at = NULL
   WHERE id = ANY(eids) AND status = 'running' AND node_id = 'node-x';
  UPDATE jobs SET completed_at = now(), next_run_at = NULL WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;

-- E: one claim row per dispatched batch (the durable lease); each execution inserted once, finished
CREATE TABLE IF NOT EXISTS micro_claims (id uuid PRIMARY KEY, node_id text NOT NULL, lease_expires_at timestamptz NOT NULL, job_ids uuid[] NOT NULL, execution_ids uuid[] NOT NULL);
CREATE INDEX IF NOT EXISTS ix_micro_claims_lease ON micro_claims (lease_expires_at);
CREATE OR REPLACE PROCEDURE micro_e(batch int) LANGUAGE plpgsql AS $$
DECLARE ids uuid[]; eids uuid[]; cid uuid;
BEGIN LOOP
  SELECT array_agg(id) INTO ids FROM (SELECT id FROM jobs WHERE next_run_at <= now() AND enabled ORDER BY next_run_at LIMIT batch FOR UPDATE SKIP LOCKED) s;
  EXIT WHEN ids IS NULL;
  UPDATE jobs SET next_run_at = NULL WHERE id = ANY(ids);
  SELECT array_agg(micro_id()) INTO eids FROM unnest(ids);
  cid := micro_id();
  INSERT INTO micro_claims VALUES (cid, 'node-x', now() + interval '30 s', ids, eids);
  COMMIT;
  INSERT INTO executions (id, organization_id, job_id, scheduled_for, attempt, trigger, status, run_after, started_at, finished_at, duration_ms, lag_ms, status_code, response_body, node_id, created_at)
    SELECT e.eid, j.organization_id, j.id, j.run_at, 1, 'schedule', 'success', j.run_at, now(), clock_timestamp(), 3, 5, 200, 'ok', 'node-x', now()
    FROM unnest(ids, eids) AS e(jid, eid) JOIN jobs j ON j.id = e.jid ORDER BY e.eid;
  DELETE FROM micro_claims WHERE id = cid;
  UPDATE jobs SET completed_at = now(), next_run_at = NULL WHERE id = ANY(ids);
  COMMIT;
END LOOP; END $$;
