"use strict";
// Reference benchmark: graphile-worker 0.17.3 draining N due HTTP jobs.
//
//   node drain.js [--mode drain|herd|sinkbench] [--n 20000] [--concurrency 64]
//                 [--queue-size 500] [--complete-delay 0] [--fail-delay 0]
//                 [--poll 100] [--pool 25] [--client http|fetch]
//                 [--analyze 1] [--herd-lead-ms 4000] [--timeout-s 600]
//                 [--pg postgres://postgres@127.0.0.1:5432] [--keep-db 0]
//                 [--sink-port P]   (an external sink on 127.0.0.1:P; no lag then)
//
// drain: create scratch DB -> runMigrations -> addJobs(N, due now) -> [ANALYZE]
//        -> t0 -> run() -> wait until graphile_worker._private_jobs is empty.
// herd:  create scratch DB -> runMigrations -> run() (idle) -> addJobs(N) all with
//        run_at = T (= now + herd-lead-ms) -> wait until table empty; elapsed from T.
// sinkbench: no DB; just hammers the sink with the same HTTP client & concurrency.
//
// Prints ONE JSON line on stdout. Diagnostics go to stderr.
const { fork } = require("child_process");
const fs = require("fs");
const http = require("http");
const path = require("path");
const { EventEmitter } = require("events");
const { performance } = require("perf_hooks");
const pg = require("pg");
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");

// ---------- args ----------
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq > 0) o[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) o[a.slice(2)] = argv[++i];
    else o[a.slice(2)] = "1";
  }
  return o;
}
const args = parseArgs(process.argv.slice(2));
const MODE = args.mode || "drain";
const N = Number(args.n || 20000);
const CONCURRENCY = Number(args.concurrency || 64);
const QUEUE_SIZE = Number(args["queue-size"] || 500);
const COMPLETE_DELAY = Number(args["complete-delay"] ?? 0);
const FAIL_DELAY = Number(args["fail-delay"] ?? 0);
const POLL = Number(args.poll || 100);
const POOL = Number(args.pool || 25);
const CLIENT = args.client || "http";
const ANALYZE = (args.analyze ?? "1") !== "0";
const HERD_LEAD_MS = Number(args["herd-lead-ms"] || 4000);
const TIMEOUT_S = Number(args["timeout-s"] || 600);
const PG_BASE = (args.pg || "postgres://postgres@127.0.0.1:5432").replace(/\/+$/, "");
const KEEP_DB = (args["keep-db"] ?? "0") !== "0";
const DB = `graphile_bench_${process.pid}`;
// An external sink on 127.0.0.1 (e.g. `punctual-bench serve-sink --port 18081`)
// instead of a forked sink.js: jobs/s is measured the same; lag needs sink.js's
// /__dump, so it is not reported.
const SINK_PORT = args["sink-port"] ? Number(args["sink-port"]) : null;
const now = () => performance.timeOrigin + performance.now();
const log = (...a) => console.error("[drain]", ...a);

// ---------- sink ----------
function startSink() {
  if (SINK_PORT) return Promise.resolve({ child: null, port: SINK_PORT });
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, "sink.js"), ["0"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", (m) => resolve({ child, port: m.port }));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`sink exited early (${code})`)));
  });
}
function getJson(port, p) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: p, agent: false }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          } catch (e) {
            reject(e);
          }
        });
      })
      .on("error", reject);
  });
}

// ---------- HTTP client used by the task ----------
function makeClient(port) {
  if (CLIENT === "fetch") {
    const base = `http://127.0.0.1:${port}/`;
    return async (id) => {
      const r = await fetch(base + id);
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`sink status ${r.status}`);
    };
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  return (id) =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/" + id, agent }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`sink status ${res.statusCode}`))));
      });
      req.on("error", reject);
    });
}

// CPU seconds so far, as punctual-bench's W1 reads its own: this Node process
// (process.cpuUsage(): the worker and its HTTP client, all threads), and from
// /proc the forked sink and the PostgreSQL backends connected to the scratch
// database (`pg_backends`) or the server's own processes (`pg_server`: WAL
// writer, checkpointer…).
const TICKS_PER_SECOND = 100;
function statCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}
function cpuSnapshot(sinkPid) {
  const usage = process.cpuUsage();
  const snapshot = { node: (usage.user + usage.system) / 1e6, sink: sinkPid ? statCpu(sinkPid) : null, pg_backends: {}, pg_server: {} };
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let cmdline;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (!cmdline.startsWith("postgres: ")) continue;
    const cpu = statCpu(entry);
    if (cpu === null) continue;
    if (cmdline.includes(DB)) snapshot.pg_backends[entry] = cpu;
    else if (!cmdline.includes(" postgres ") && cmdline.trim().split(/\s+/).length <= 4) snapshot.pg_server[entry] = cpu;
  }
  return snapshot;
}
function cpuSince(before, after) {
  const diff = (a, b) => Object.entries(b).reduce((sum, [pid, cpu]) => sum + Math.max(0, cpu - (a[pid] ?? 0)), 0);
  return {
    node: after.node - before.node,
    sink: after.sink === null || before.sink === null ? null : after.sink - before.sink,
    pg_backends: diff(before.pg_backends, after.pg_backends),
    pg_server: diff(before.pg_server, after.pg_server),
  };
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[idx] * 10) / 10;
}
const r3 = (x) => Math.round(x * 1000) / 1000;

async function sinkbench() {
  const { child, port } = await startSink();
  const get = makeClient(port);
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) await get(String(next++));
    }),
  );
  const el = (now() - t0) / 1000;
  const c = SINK_PORT ? { count: null } : await getJson(port, "/__count");
  if (child) child.kill("SIGTERM");
  console.log(JSON.stringify({ mode: "sinkbench", requests: N, counted: c.count, elapsed_s: r3(el), req_per_s: Math.round(N / el), concurrency: CONCURRENCY, client: CLIENT }));
}

async function main() {
  if (MODE === "sinkbench") return sinkbench();
  if (MODE !== "drain" && MODE !== "herd") throw new Error(`unknown mode ${MODE}`);

  const { child: sink, port } = await startSink();
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  await admin.query(`drop database if exists ${DB} with (force)`);
  await admin.query(`create database ${DB}`);
  const connectionString = `${PG_BASE}/${DB}`;
  const pgVersion = (await admin.query("show server_version")).rows[0].server_version;

  const logger = new Logger(() => (level, message) => {
    if (level === "error" || level === "warning") console.error(`[gw ${level}] ${message}`);
  });

  let runner = null;
  let utils = null;
  const probe = new pg.Client({ connectionString });
  try {
    await runMigrations({ connectionString, logger });
    await probe.connect();
    utils = await makeWorkerUtils({ connectionString, logger });

    const get = makeClient(port);
    const taskList = {
      http_get: async (_payload, helpers) => {
        await get(helpers.job.id);
      },
    };
    const events = new EventEmitter();
    let successes = 0;
    let failures = 0;
    let tHandlersDone = 0;
    let resolveHandlersDone;
    const handlersDone = new Promise((r) => (resolveHandlersDone = r));
    events.on("job:success", () => {
      if (++successes === N) {
        tHandlersDone = now();
        resolveHandlersDone();
      }
    });
    if (args.debug) {
      const tt = () => Math.round(now() - (globalThis.__t0 || now()));
      events.on("localQueue:getJobs:complete", ({ jobs }) => log(`+${tt()}ms getJobs -> ${jobs.length}`));
      events.on("localQueue:setMode", ({ oldMode, newMode }) => log(`+${tt()}ms mode ${oldMode} -> ${newMode}`));
      events.on("localQueue:refetchDelay:start", ({ jobCount, delayMs }) => log(`+${tt()}ms refetchDelay ${jobCount} ${delayMs}`));
    }
    events.on("job:error", ({ error }) => {
      if (failures++ < 5) log("job error:", error && error.message);
    });

    const preset = {
      worker: {
        connectionString,
        concurrentJobs: CONCURRENCY,
        maxPoolSize: POOL,
        pollInterval: POLL,
        localQueue: { size: QUEUE_SIZE },
        completeJobBatchDelay: COMPLETE_DELAY,
        failJobBatchDelay: FAIL_DELAY,
        logger,
        events,
        // no task directory / crontab on disk: taskList + empty cron passed explicitly
      },
    };
    const runnerOpts = { preset, taskList, noHandleSignals: true };

    // job id -> run_at (epoch ms)
    const runAt = new Map();
    const insert = async (runAtDate) => {
      const CHUNK = 5000;
      const t = now();
      for (let off = 0; off < N; off += CHUNK) {
        const specs = [];
        for (let i = off; i < Math.min(N, off + CHUNK); i++) {
          const s = { identifier: "http_get", payload: { i } };
          if (runAtDate) s.runAt = runAtDate;
          specs.push(s);
        }
        const jobs = await utils.addJobs(specs);
        for (const j of jobs) runAt.set(String(j.id), j.run_at.getTime());
      }
      if (ANALYZE) await probe.query("analyze graphile_worker._private_jobs");
      return (now() - t) / 1000;
    };

    let t0;
    let insertS;
    let cpuBefore = null;
    if (MODE === "drain") {
      insertS = await insert(null);
      const c = (await probe.query("select count(*)::int as c from graphile_worker._private_jobs where run_at <= now()")).rows[0].c;
      if (c !== N) throw new Error(`expected ${N} due jobs, found ${c}`);
      log(`inserted ${N} due jobs in ${r3(insertS)}s; starting runner`);
      cpuBefore = cpuSnapshot(sink && sink.pid);
      t0 = now();
      globalThis.__t0 = t0;
      runner = await run(runnerOpts, undefined, []);
    } else {
      runner = await run(runnerOpts, undefined, []);
      await new Promise((r) => setTimeout(r, 1000)); // let the idle runner settle into polling
      const T = Math.ceil(now() + HERD_LEAD_MS);
      insertS = await insert(new Date(T));
      const lead = T - now();
      log(`inserted ${N} jobs due at T in ${r3(insertS)}s; T is ${Math.round(lead)}ms away`);
      if (lead < 0) log("WARNING: insert finished after T; increase --herd-lead-ms");
      t0 = T;
      globalThis.__t0 = T;
    }

    // wait for all handlers to succeed, then for the table to be empty
    const deadline = t0 + TIMEOUT_S * 1000;
    const timeout = new Promise((_, rej) => {
      const iv = setInterval(() => {
        if (now() > deadline) {
          clearInterval(iv);
          rej(new Error(`timeout: ${successes}/${N} succeeded, ${failures} failures`));
        }
      }, 200);
      handlersDone.then(() => clearInterval(iv));
    });
    await Promise.race([handlersDone, timeout]);
    let tEmpty;
    for (;;) {
      // The poll's start: the last delete committed before it (until session 17
      // the time after the query, a few ms later; punctual-bench takes the start).
      const asked = now();
      const c = (await probe.query("select count(*)::int as c from graphile_worker._private_jobs")).rows[0].c;
      if (c === 0) {
        tEmpty = asked;
        break;
      }
      if (now() > deadline) throw new Error(`timeout waiting for empty table (${c} left)`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const cpu = cpuBefore && cpuSince(cpuBefore, cpuSnapshot(sink && sink.pid));
    await runner.stop();
    runner = null;

    // lag per job from the sink's receive timestamps
    const dump = SINK_PORT ? { count: null, ids: [], ts: [] } : await getJson(port, "/__dump");
    const lags = [];
    const lagsFromStart = [];
    let lastSink = 0;
    let firstSink = Infinity;
    let unknown = 0;
    const seen = new Set();
    for (let i = 0; i < dump.ids.length; i++) {
      const id = dump.ids[i];
      const ra = runAt.get(id);
      if (ra === undefined) {
        unknown++;
        continue;
      }
      if (seen.has(id)) continue; // count first delivery only
      seen.add(id);
      const ts = dump.ts[i];
      lags.push(ts - ra);
      lagsFromStart.push(ts - Math.max(ra, t0));
      if (ts > lastSink) lastSink = ts;
      if (ts < firstSink) firstSink = ts;
    }
    lags.sort((a, b) => a - b);
    lagsFromStart.sort((a, b) => a - b);
    const elapsed = (tEmpty - t0) / 1000;
    const out = {
      impl: "graphile-worker@0.17.3",
      mode: MODE,
      jobs: N,
      elapsed_s: r3(elapsed),
      jobs_per_s: Math.round(N / elapsed),
      lag_p50_ms: pct(lags, 50),
      lag_p90_ms: pct(lags, 90),
      lag_p99_ms: pct(lags, 99),
      lag_max_ms: pct(lags, 100),
      concurrency: CONCURRENCY,
      options: {
        localQueue: { size: QUEUE_SIZE },
        completeJobBatchDelay: COMPLETE_DELAY,
        failJobBatchDelay: FAIL_DELAY,
        pollInterval: POLL,
        maxPoolSize: POOL,
        client: CLIENT,
        sink: SINK_PORT ? `external 127.0.0.1:${SINK_PORT}` : "sink.js (forked)",
        analyze_after_insert: ANALYZE,
        ...(MODE === "herd" ? { herd_lead_ms: HERD_LEAD_MS } : {}),
      },
      detail: {
        insert_s: r3(insertS),
        first_sink_after_start_ms: SINK_PORT ? null : Math.round(firstSink - t0),
        handlers_done_s: r3((tHandlersDone - t0) / 1000),
        sink_last_s: SINK_PORT ? null : r3((lastSink - t0) / 1000),
        sink_requests: dump.count,
        distinct_jobs_hit: SINK_PORT ? null : seen.size,
        job_errors: failures,
        unknown_sink_ids: SINK_PORT ? null : unknown,
        // drain mode: lag measured from max(run_at, runner start) i.e. excludes insert time
        lag_from_start_p50_ms: pct(lagsFromStart, 50),
        lag_from_start_p99_ms: pct(lagsFromStart, 99),
        // drain mode: from the runner's start to the end, as punctual-bench's W1
        cpu_us_per_job: cpu && Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v === null ? null : Math.round((v * 1e6) / N * 10) / 10])),
      },
      postgres: pgVersion,
      node: process.version,
    };
    console.log(JSON.stringify(out));
  } finally {
    try {
      if (runner) await runner.stop();
    } catch (e) {
      log("runner.stop error:", e.message);
    }
    try {
      if (utils) await utils.release();
    } catch {}
    try {
      await probe.end();
    } catch {}
    if (!KEEP_DB) {
      try {
        await admin.query(`drop database if exists ${DB} with (force)`);
      } catch (e) {
        log("drop db failed:", e.message);
      }
    } else log(`kept database ${DB}`);
    await admin.end();
    if (sink) sink.kill("SIGTERM");
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
