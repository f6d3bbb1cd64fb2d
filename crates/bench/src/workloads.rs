//! W1 drain, W2 herd and W3 steady: the real engine (`punctual_scheduler::Engine`)
//! on a scratch database, calling the loopback sink.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use punctual_domain::Schedule;
use punctual_persistence::entities::execution;
use punctual_persistence::sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement,
    Value as DbValue,
};
use punctual_persistence::{Backend, Database};
use punctual_scheduler::{Engine, EngineConfig, EngineHandle};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::{self, Scratch, Timing};
use crate::probe::{self, CpuSnapshot, QueryCounts};
use crate::sink::Sink;

/// Settings shared by the engine workloads.
#[derive(Clone)]
pub struct Options {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// Engine: executions at once.
    pub max_in_flight: usize,
    /// Engine: jobs per dispatch transaction.
    pub dispatch_batch: u64,
    /// Engine's pool size.
    pub pool: u32,
    /// Engine: claim occurrences this long ahead (None: the engine's default).
    pub lookahead_ms: Option<u64>,
    /// Engine: completions queued for the recorder (None: the engine's default).
    pub record_queue: Option<usize>,
    /// Sink worker threads.
    pub sink_threads: usize,
    /// Keep the scratch database.
    pub keep: bool,
    /// Count statements (a tracing layer on sqlx's query log).
    pub queries: Option<Arc<QueryCounts>>,
    /// Print query plans of the engine's claim queries (mid-run where it applies).
    pub explain: bool,
    /// Longest wait for a workload to complete.
    pub timeout: Duration,
    /// The jobs' concurrency policy (W1–W3).
    pub job_concurrency: String,
    /// W1–W3: where the jobs send their requests instead of the built-in sink
    /// (another system's sink, to compare on one); what the sink saw is then
    /// not measured.
    pub target_url: Option<String>,
}

/// A scratch database with the benchmark organization, and the sink.
struct Bench {
    scratch: Scratch,
    org: Uuid,
    sink: Sink,
    version: String,
    options: Options,
    loadavg: f64,
}

impl Bench {
    /// Where the jobs send their requests.
    fn target_url(&self) -> String {
        self.options
            .target_url
            .clone()
            .unwrap_or_else(|| self.sink.url())
    }

    /// The built-in sink when the jobs call it (None with `--target-url`).
    fn counting_sink(&self) -> Option<&Sink> {
        self.options.target_url.is_none().then_some(&self.sink)
    }

    /// How the requests the jobs send are counted from now on.
    async fn sink_count(&self) -> SinkCount<'_> {
        match &self.options.target_url {
            None => SinkCount::Builtin(&self.sink),
            Some(url) => SinkCount::remote(url).await,
        }
    }

    /// What the built-in sink saw (None when the jobs called another one).
    fn arrivals(&self) -> Option<HashMap<Uuid, (DateTime<Utc>, u32)>> {
        self.counting_sink().map(arrivals)
    }

    async fn setup(options: &Options) -> anyhow::Result<(Self, Database)> {
        let loadavg = probe::loadavg();
        let mut scratch = Scratch::create(&options.database_url).await?;
        if options.keep {
            scratch.keep();
        }
        let setup = db::connect(&scratch.url, 4).await?;
        let org = db::create_organization(&setup).await?;
        let version = db::server_version(&setup).await;
        let sink = Sink::start(options.sink_threads)?;
        Ok((
            Self {
                scratch,
                org,
                sink,
                version,
                options: options.clone(),
                loadavg,
            },
            setup,
        ))
    }

    fn backend_name(&self) -> &'static str {
        match self.scratch.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

    fn engine_config(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        EngineConfig {
            allow_private_networks: true,
            max_in_flight: self.options.max_in_flight,
            dispatch_batch: self.options.dispatch_batch,
            lookahead: self
                .options
                .lookahead_ms
                .map_or(defaults.lookahead, Duration::from_millis),
            record_queue: self.options.record_queue.unwrap_or(defaults.record_queue),
            ..defaults
        }
    }

    fn header(&self, workload: &str) -> serde_json::Map<String, Value> {
        let engine = self.engine_config();
        let mut map = serde_json::Map::new();
        map.insert("workload".into(), json!(workload));
        map.insert("backend".into(), json!(self.backend_name()));
        map.insert("db_version".into(), json!(self.version));
        map.insert("loadavg_1m_before".into(), json!(self.loadavg));
        map.insert(
            "job_concurrency".into(),
            json!(self.options.job_concurrency),
        );
        map.insert(
            "engine".into(),
            json!({
                "max_in_flight": self.options.max_in_flight,
                "dispatch_batch": self.options.dispatch_batch,
                "pool": self.options.pool,
                "lookahead_ms": engine.lookahead.as_millis(),
                "record_queue": engine.record_queue,
            }),
        );
        map
    }

    /// ANALYZE the bulk-loaded jobs table on PostgreSQL (what autovacuum would do
    /// shortly after a large load), so plans do not depend on its timing.
    async fn analyze(&self, database: &Database) -> anyhow::Result<()> {
        if self.scratch.backend == Backend::Postgres {
            database.conn().execute_unprepared("ANALYZE jobs").await?;
        }
        Ok(())
    }

    /// Snapshot of counters before the engine starts.
    async fn before(&self) -> anyhow::Result<Probe> {
        if let Some(queries) = &self.options.queries {
            queries.reset();
        }
        Ok(Probe {
            cpu: CpuSnapshot::take(self.scratch.pg_name.as_deref()),
            pg: match self.scratch.backend {
                Backend::Postgres => Some(db::pg_stats(&self.scratch.url).await?),
                Backend::Sqlite => None,
            },
        })
    }

    async fn engine(&self) -> anyhow::Result<(Database, EngineHandle)> {
        let database = db::connect(&self.scratch.url, self.options.pool).await?;
        let handle = Engine::new(database.clone(), self.engine_config())?.start(None);
        Ok((database, handle))
    }

    /// Stops the engine and collects CPU, statement and PostgreSQL counters.
    async fn finish(
        &self,
        before: Probe,
        engine_db: Database,
        handle: EngineHandle,
        executions: usize,
        out: &mut serde_json::Map<String, Value>,
    ) -> anyhow::Result<()> {
        let cpu_after = CpuSnapshot::take(self.scratch.pg_name.as_deref());
        handle.shutdown().await;
        engine_db.close().await;
        let cpu = before.cpu.since(&cpu_after);
        let per = executions.max(1) as f64;
        let cpu_per = probe::per_unit(&cpu, per);
        out.insert("cpu_s".into(), cpu);
        out.insert("cpu_us_per_execution".into(), Value::Object(cpu_per));
        if let Some(queries) = &self.options.queries {
            out.insert("queries".into(), queries.report(per));
        }
        if let Some(pg_before) = before.pg {
            // Backends flush their statistics when they exit (the pool is closed).
            tokio::time::sleep(Duration::from_millis(700)).await;
            let pg_after = db::pg_stats(&self.scratch.url).await?;
            let diff = db::diff_json(&pg_before, &pg_after);
            out.insert(
                "pg_stat_per_execution".into(),
                Value::Object(probe::divided(&diff, per, 2)),
            );
        }
        Ok(())
    }

    async fn teardown(self) -> anyhow::Result<()> {
        drop(self.sink);
        self.scratch.remove().await
    }
}

struct Probe {
    cpu: CpuSnapshot,
    pg: Option<Value>,
}

/// One execution as read back.
struct Row {
    job_id: Uuid,
    scheduled_for: DateTime<Utc>,
    attempt: i32,
    status: String,
    lag_ms: Option<i64>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

async fn read_executions(
    database: &Database,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> anyhow::Result<Vec<Row>> {
    let mut query = execution::Entity::find();
    if let Some((from, to)) = window {
        query = query
            .filter(execution::Column::ScheduledFor.gte(from))
            .filter(execution::Column::ScheduledFor.lt(to));
    }
    Ok(query
        .all(database.conn())
        .await?
        .into_iter()
        .map(|e| Row {
            job_id: e.job_id,
            scheduled_for: e.scheduled_for,
            attempt: e.attempt,
            status: e.status,
            lag_ms: e.lag_ms,
            started_at: e.started_at,
            finished_at: e.finished_at,
        })
        .collect())
}

fn ms(d: TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Lag percentiles, duplicates and missing occurrences from the rows read back.
/// `expected`: the occurrences that should have succeeded.
fn summarize(
    rows: &[Row],
    arrivals: Option<&HashMap<Uuid, (DateTime<Utc>, u32)>>,
    expected: usize,
    out: &mut serde_json::Map<String, Value>,
) {
    let mut lag = Vec::new();
    let mut claim_lag = Vec::new();
    let mut finish_lag = Vec::new();
    let mut delivery_lag = Vec::new();
    let mut statuses: HashMap<&str, u64> = HashMap::new();
    let mut per_occurrence: HashMap<(Uuid, DateTime<Utc>), u32> = HashMap::new();
    let mut succeeded: HashSet<(Uuid, DateTime<Utc>)> = HashSet::new();
    let mut retries = 0u64;
    for row in rows {
        *statuses.entry(row.status.as_str()).or_default() += 1;
        *per_occurrence
            .entry((row.job_id, row.scheduled_for))
            .or_default() += 1;
        if row.attempt > 1 {
            retries += 1;
        }
        if row.status == "success" {
            succeeded.insert((row.job_id, row.scheduled_for));
        }
        if row.attempt != 1 {
            continue;
        }
        if let Some(l) = row.lag_ms {
            lag.push(l as f64);
        }
        if let Some(s) = row.started_at {
            claim_lag.push(ms(s - row.scheduled_for));
        }
        if let Some(f) = row.finished_at {
            if row.status == "success" {
                finish_lag.push(ms(f - row.scheduled_for));
            }
        }
        if let Some((arrived, _)) =
            message_id(row.job_id, row.scheduled_for).and_then(|id| arrivals?.get(&id))
        {
            delivery_lag.push(ms(*arrived - row.scheduled_for));
        }
    }
    // Seen by the sink rather than the database: requests beyond the attempts
    // recorded for an occurrence (a request sent twice under one record), and
    // succeeded occurrences the sink never saw.
    let mut sink_duplicates = 0u64;
    let mut sink_missing = 0u64;
    for (job_id, scheduled_for) in per_occurrence.keys().filter(|_| arrivals.is_some()) {
        let seen = message_id(*job_id, *scheduled_for)
            .and_then(|id| arrivals?.get(&id))
            .map_or(0, |(_, count)| *count);
        let recorded = per_occurrence[&(*job_id, *scheduled_for)];
        sink_duplicates += u64::from(seen.saturating_sub(recorded));
        if seen == 0 && succeeded.contains(&(*job_id, *scheduled_for)) {
            sink_missing += 1;
        }
    }
    let duplicates: u64 = per_occurrence
        .values()
        .map(|n| u64::from(n.saturating_sub(1)))
        .sum();
    out.insert("executions".into(), json!(rows.len()));
    out.insert("statuses".into(), json!(statuses));
    out.insert("duplicates".into(), json!(duplicates));
    out.insert("retries".into(), json!(retries));
    if arrivals.is_some() {
        out.insert("sink_duplicates".into(), json!(sink_duplicates));
        out.insert("sink_missing".into(), json!(sink_missing));
    } else {
        out.insert("sink".into(), json!("external: not measured"));
    }
    out.insert(
        "missing".into(),
        json!(expected.saturating_sub(succeeded.len())),
    );
    out.insert("lag_ms".into(), probe::percentiles(&mut lag));
    out.insert("claim_lag_ms".into(), probe::percentiles(&mut claim_lag));
    out.insert(
        "delivery_lag_ms".into(),
        probe::percentiles(&mut delivery_lag),
    );
    out.insert("finish_lag_ms".into(), probe::percentiles(&mut finish_lag));
}

fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => format!("${n}"),
        Backend::Sqlite => "?".to_owned(),
    }
}

fn sea_backend(backend: Backend) -> DatabaseBackend {
    match backend {
        Backend::Postgres => DatabaseBackend::Postgres,
        Backend::Sqlite => DatabaseBackend::Sqlite,
    }
}

/// `SELECT COUNT(*)` through the watcher's own connection (tagged so the
/// statement counter can tell it from the engine's).
async fn count(database: &Database, sql_where: &str, values: Vec<DbValue>) -> anyhow::Result<i64> {
    let sql = format!("SELECT COUNT(*) AS bench_watch FROM {sql_where}");
    let row = database
        .conn()
        .query_one(Statement::from_sql_and_values(
            sea_backend(database.backend()),
            sql,
            values,
        ))
        .await?
        .context("a count")?;
    Ok(row.try_get::<i64>("", "bench_watch")?)
}

/// Where the requests the jobs sent are counted while a run waits for its end.
enum SinkCount<'a> {
    /// The built-in sink, in this process.
    Builtin(&'a Sink),
    /// A sink in another process answering `/__count` (the reference's sink.js,
    /// `serve-sink`): its count less what it had counted before the run.
    Remote {
        url: reqwest::Url,
        client: reqwest::Client,
        baseline: u64,
    },
    /// Not known: the database is polled throughout.
    Unknown,
}

impl SinkCount<'_> {
    async fn remote(target: &str) -> Self {
        let client = reqwest::Client::new();
        let Ok(mut url) = reqwest::Url::parse(target) else {
            return Self::Unknown;
        };
        url.set_path(crate::sink::COUNT_PATH);
        url.set_query(None);
        match remote_count(&client, &url).await {
            Some(baseline) => Self::Remote {
                url,
                client,
                baseline,
            },
            None => {
                eprintln!("{url} did not answer a count: polling the database throughout");
                Self::Unknown
            }
        }
    }

    /// Requests counted since the run began, if known.
    async fn requests(&self) -> Option<u64> {
        match self {
            Self::Builtin(sink) => Some(sink.state.requests()),
            Self::Remote {
                url,
                client,
                baseline,
            } => remote_count(client, url)
                .await
                .map(|count| count.saturating_sub(*baseline)),
            Self::Unknown => None,
        }
    }
}

/// `{"count": N}` from a sink's count path.
async fn remote_count(client: &reqwest::Client, url: &reqwest::Url) -> Option<u64> {
    let answer: Value = client
        .get(url.clone())
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer.get("count")?.as_u64()
}

/// Waits until `target` successes are recorded (committed) and returns the
/// instant a poll first saw them all: the start of that poll's query, so the
/// last commit happened before it (the reference's drain.js takes the start of
/// its poll too). The database is polled only once the sink has counted
/// `target` requests, then every 5 ms, as drain.js polls for its empty table
/// once its handlers are done; when the sink's count is unknown it is polled
/// throughout, every 50 ms and every 5 ms past 90%. None when it gave up (no
/// progress for 30 s, or the timeout).
async fn wait_for_successes(
    sink: &SinkCount<'_>,
    watcher: &Database,
    target: usize,
    timeout: Duration,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let deadline = Instant::now() + timeout;
    let mut last = (0u64, 0i64);
    let mut last_change = Instant::now();
    loop {
        let requests = sink.requests().await;
        let all_sent = requests.is_some_and(|r| r as usize >= target);
        let mut done = 0;
        if all_sent || requests.is_none() {
            let asked_at = Utc::now();
            done = count(watcher, "executions WHERE status = 'success'", vec![]).await?;
            if done as usize >= target {
                return Ok(Some(asked_at));
            }
        }
        let progress = (requests.unwrap_or(0), done);
        if progress != last {
            last = progress;
            last_change = Instant::now();
        }
        if Instant::now() > deadline || last_change.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "gave up waiting: {requests:?} requests seen, {done} successes recorded of {target}"
            );
            return Ok(None);
        }
        let pause = match requests {
            Some(_) if !all_sent => 10,
            None if (done as usize) * 10 < target * 9 => 50,
            _ => 5,
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// What reached the sink for each `webhook-id` (an occurrence: every attempt
/// at it carries the same id): its first arrival and how many arrived.
fn arrivals(sink: &Sink) -> HashMap<Uuid, (DateTime<Utc>, u32)> {
    let mut map: HashMap<Uuid, (DateTime<Utc>, u32)> = HashMap::new();
    for (id, at) in sink.state.take_arrivals() {
        let entry = map.entry(id).or_insert((at, 0));
        entry.0 = entry.0.min(at);
        entry.1 += 1;
    }
    map
}

/// The `webhook-id` the engine sends for an occurrence.
fn message_id(job_id: Uuid, scheduled_for: DateTime<Utc>) -> Option<Uuid> {
    Uuid::parse_str(&punctual_scheduler::signing::occurrence_message_id(
        job_id,
        scheduled_for,
    ))
    .ok()
}

/// W1: `jobs` once-jobs due now, inserted before the engine starts; drained.
pub async fn w1_drain(options: &Options, jobs: usize) -> anyhow::Result<Value> {
    let (bench, setup) = Bench::setup(options).await?;
    let url = bench.target_url();
    let due = Utc::now();
    let insert_s = db::insert_jobs(&setup, jobs, |_| {
        db::job_row_with(
            bench.org,
            &url,
            Timing::Once(due),
            due,
            &bench.options.job_concurrency,
        )
    })
    .await?;
    bench.analyze(&setup).await?;
    setup.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let watcher = db::connect(&bench.scratch.url, 1).await?;
    let before = bench.before().await?;
    let sink_count = bench.sink_count().await;
    let engine_start = Utc::now();
    let (engine_db, handle) = bench.engine().await?;
    explain_later(&bench, Duration::from_millis(300));
    let seen_done = wait_for_successes(&sink_count, &watcher, jobs, options.timeout).await?;
    let mut out = bench.header("w1_drain");
    bench
        .finish(before, engine_db, handle, jobs, &mut out)
        .await?;
    let rows = read_executions(&watcher, None).await?;
    let last_finish = rows
        .iter()
        .filter(|r| r.status == "success")
        .filter_map(|r| r.finished_at)
        .max()
        .unwrap_or(engine_start);
    // Until session 16 the clock stopped at the last `finished_at`, before that
    // outcome's commit; now it stops when a poll saw every success committed, as
    // the reference's clock stops when a poll sees its table empty. A run that
    // gave up (complete: false) falls back to the last `finished_at`.
    let to_last_finish = ms(last_finish - engine_start) / 1000.0;
    let elapsed = seen_done.map_or(to_last_finish, |at| ms(at - engine_start) / 1000.0);
    out.insert("jobs".into(), json!(jobs));
    out.insert("insert_s".into(), json!(probe::round_to(insert_s, 2)));
    out.insert("complete".into(), json!(seen_done.is_some()));
    out.insert("elapsed_s".into(), json!(probe::round_to(elapsed, 3)));
    out.insert(
        "jobs_per_s".into(),
        json!(probe::round(jobs as f64 / elapsed.max(1e-9))),
    );
    out.insert(
        "elapsed_to_last_finish_s".into(),
        json!(probe::round_to(to_last_finish, 3)),
    );
    out.insert(
        "jobs_per_s_to_last_finish".into(),
        json!(probe::round(jobs as f64 / to_last_finish.max(1e-9))),
    );
    out.insert(
        "sink_requests".into(),
        json!(bench.counting_sink().map(|s| s.state.requests())),
    );
    out.insert(
        "note".into(),
        json!("lag counts from the jobs' due time, which precedes the engine start by the insert"),
    );
    let arrivals = bench.arrivals();
    summarize(&rows, arrivals.as_ref(), jobs, &mut out);
    watcher.close().await;
    bench.teardown().await?;
    Ok(Value::Object(out))
}

/// W2: the engine running and idle; `jobs` once-jobs inserted, all due at one
/// instant `lead` ahead; the engine is woken as the API wakes it on a change.
pub async fn w2_herd(options: &Options, jobs: usize, lead: Duration) -> anyhow::Result<Value> {
    let (bench, setup) = Bench::setup(options).await?;
    let url = bench.target_url();
    let watcher = db::connect(&bench.scratch.url, 1).await?;
    let (engine_db, handle) = bench.engine().await?;
    // Let it settle into its idle sleep.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = Utc::now();
    let due = (now + TimeDelta::from_std(lead)?)
        .duration_round(TimeDelta::milliseconds(1))
        .unwrap_or(now);
    let insert_s = db::insert_jobs(&setup, jobs, |_| {
        db::job_row_with(
            bench.org,
            &url,
            Timing::Once(due),
            now,
            &bench.options.job_concurrency,
        )
    })
    .await?;
    bench.analyze(&setup).await?;
    setup.close().await;
    // Closed backends flush their statistics: the insert stays out of the counts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = bench.before().await?;
    handle.wake();
    let margin = ms(due - Utc::now()) / 1000.0;
    explain_later(
        &bench,
        (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100),
    );
    let complete = wait_for_successes(&bench.sink_count().await, &watcher, jobs, options.timeout)
        .await?
        .is_some();
    let mut out = bench.header("w2_herd");
    bench
        .finish(before, engine_db, handle, jobs, &mut out)
        .await?;
    let rows = read_executions(&watcher, None).await?;
    let last_finish = rows
        .iter()
        .filter(|r| r.status == "success")
        .filter_map(|r| r.finished_at)
        .max()
        .unwrap_or(due);
    out.insert("jobs".into(), json!(jobs));
    out.insert("insert_s".into(), json!(probe::round_to(insert_s, 2)));
    out.insert(
        "due_after_insert_s".into(),
        json!(probe::round_to(margin, 3)),
    );
    out.insert("complete".into(), json!(complete));
    out.insert(
        "herd_done_after_ms".into(),
        json!(probe::round(ms(last_finish - due))),
    );
    out.insert(
        "sink_requests".into(),
        json!(bench.counting_sink().map(|s| s.state.requests())),
    );
    let arrivals = bench.arrivals();
    summarize(&rows, arrivals.as_ref(), jobs, &mut out);
    watcher.close().await;
    bench.teardown().await?;
    Ok(Value::Object(out))
}

/// W3 settings.
#[derive(Debug, Clone, Copy)]
pub struct Steady {
    /// Jobs in the table.
    pub jobs: usize,
    /// Occurrences due per second.
    pub rate: usize,
    /// Measured seconds.
    pub duration: u64,
    /// Seconds run before the measured window.
    pub warmup: u64,
    /// Seconds between two runs of an active job (a divisor of 60).
    pub period: u32,
}

/// W3: `jobs` cron jobs; `rate × period` of them are active (a 6-field cron
/// every `period` seconds, offsets spread so `rate` are due each second), the
/// rest dormant (daily crons whose next run is after the window). Measures the
/// lag of the occurrences due in the window.
pub async fn w3_steady(options: &Options, steady: Steady) -> anyhow::Result<Value> {
    anyhow::ensure!(
        steady.period > 0 && 60 % steady.period == 0,
        "--period must divide 60"
    );
    let (bench, setup) = Bench::setup(options).await?;
    let url = bench.target_url();
    let active = steady.jobs.min(steady.rate * steady.period as usize);
    let dormant = steady.jobs - active;
    let now = Utc::now();
    let not_before = now + TimeDelta::hours(1);
    let insert_dormant_s = db::insert_jobs(&setup, dormant, |i| {
        db::job_row_with(
            bench.org,
            &url,
            db::dormant_timing(i, not_before),
            now,
            &bench.options.job_concurrency,
        )
    })
    .await?;
    // The first occurrences: the next whole second at least 2 s from now.
    let start = (Utc::now() + TimeDelta::seconds(2))
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(now)
        + TimeDelta::seconds(1);
    let schedules: Vec<(String, DateTime<Utc>)> = (0..steady.period)
        .map(|k| {
            let expr = format!("{k}/{} * * * * *", steady.period);
            let schedule =
                Schedule::parse_cron(&expr, "UTC").map_err(|e| anyhow::anyhow!("{expr}: {e}"))?;
            let next = schedule
                .next_after(start - TimeDelta::milliseconds(1))
                .context("a next run")?;
            Ok((expr, next))
        })
        .collect::<anyhow::Result<_>>()?;
    let inserted_at = Utc::now();
    let insert_active_s = db::insert_jobs(&setup, active, |i| {
        let (expr, next) = &schedules[i % schedules.len()];
        db::job_row_with(
            bench.org,
            &url,
            Timing::Cron {
                expr: expr.clone(),
                next: *next,
            },
            inserted_at,
            &bench.options.job_concurrency,
        )
    })
    .await?;
    bench.analyze(&setup).await?;
    setup.close().await;
    anyhow::ensure!(
        Utc::now() < start,
        "inserting took past the first occurrence; raise the margin"
    );
    let window_start = start + TimeDelta::seconds(steady.warmup as i64);
    let window_end = window_start + TimeDelta::seconds(steady.duration as i64);
    let expected = (active / steady.period as usize) * steady.duration as usize;
    let watcher = db::connect(&bench.scratch.url, 1).await?;
    let before = bench.before().await?;
    let (engine_db, handle) = bench.engine().await?;
    let middle = window_start + TimeDelta::seconds(steady.duration as i64 / 2);
    explain_later(&bench, (middle - Utc::now()).to_std().unwrap_or_default());
    let wait = (window_end - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    // The window's occurrences: all dispatched and finished.
    let deadline = Instant::now() + options.timeout;
    let p = placeholder(bench.scratch.backend, 1);
    let complete = loop {
        let undispatched = count(
            &watcher,
            &format!("jobs WHERE next_run_at < {p}"),
            vec![window_end.into()],
        )
        .await?;
        let unfinished = count(
            &watcher,
            &format!("executions WHERE scheduled_for < {p} AND status IN ('pending', 'running')"),
            vec![window_end.into()],
        )
        .await?;
        if undispatched == 0 && unfinished == 0 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut out = bench.header("w3_steady");
    let rows = read_executions(&watcher, Some((window_start, window_end))).await?;
    let in_window = rows.len();
    let engine_executions = rows.len().max(expected);
    bench
        .finish(before, engine_db, handle, engine_executions, &mut out)
        .await?;
    out.insert("jobs".into(), json!(steady.jobs));
    out.insert("active_jobs".into(), json!(active));
    out.insert("dormant_jobs".into(), json!(dormant));
    out.insert(
        "due_per_s".into(),
        json!(active as f64 / steady.period as f64),
    );
    out.insert("period_s".into(), json!(steady.period));
    out.insert("warmup_s".into(), json!(steady.warmup));
    out.insert("duration_s".into(), json!(steady.duration));
    out.insert(
        "insert_s".into(),
        json!(probe::round_to(insert_dormant_s + insert_active_s, 2)),
    );
    out.insert("expected_occurrences".into(), json!(expected));
    out.insert("complete".into(), json!(complete));
    out.insert(
        "note".into(),
        json!("cron has 1 s resolution: each second's occurrences are due at the same instant; cpu and statement counts cover warm-up, window and the drain after it, divided by the window's occurrences"),
    );
    let arrivals = bench.arrivals();
    summarize(&rows, arrivals.as_ref(), expected, &mut out);
    let _ = in_window;
    watcher.close().await;
    bench.teardown().await?;
    Ok(Value::Object(out))
}

/// With `--explain`, prints the claim queries' plans `after` from now (while the
/// engine works).
fn explain_later(bench: &Bench, after: Duration) {
    if !bench.options.explain {
        return;
    }
    let url = bench.scratch.url.clone();
    let backend = bench.scratch.backend;
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        if let Err(error) = explain(&url, backend).await {
            eprintln!("explain failed: {error:#}");
        }
    });
}

/// Prints the plans of the engine's queue queries — the statements themselves,
/// from `punctual_persistence::engine::queue_statements` — to stderr: EXPLAIN
/// (ANALYZE, BUFFERS) in a rolled-back transaction on PostgreSQL (the claims
/// lock rows), EXPLAIN QUERY PLAN on SQLite.
pub async fn explain(url: &str, backend: Backend) -> anyhow::Result<()> {
    use punctual_persistence::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let database = db::connect(url, 1).await?;
    let now = Utc::now();
    let engine = EngineConfig::default();
    let statements = punctual_persistence::engine::queue_statements(
        sea_backend(backend),
        now,
        now + chrono::Duration::from_std(engine.lookahead)?,
        engine.dispatch_batch,
    );
    let (prefix, column) = match backend {
        Backend::Postgres => ("EXPLAIN (ANALYZE, BUFFERS)", 0),
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
    };
    for (name, statement) in statements {
        let explained = Statement {
            sql: format!("{prefix} {}", statement.sql),
            ..statement
        };
        let transaction = database.conn().begin().await?;
        let rows = transaction.query_all(explained).await?;
        transaction.rollback().await?;
        eprintln!("--- {name} ({backend:?}, at {now})");
        for row in rows {
            eprintln!(
                "{}",
                row.try_get_by_index::<String>(column).unwrap_or_default()
            );
        }
    }
    database.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(client: &reqwest::Client, url: &str, times: usize) {
        for _ in 0..times {
            let answer = client.get(url).send().await.expect("the sink answers");
            assert!(answer.status().is_success());
        }
    }

    #[tokio::test]
    async fn a_sink_in_another_process_is_counted_from_the_run_on() {
        // Started by itself, the sink stands for one `serve-sink` runs.
        let sink = Sink::start(1).expect("a sink");
        let client = reqwest::Client::new();
        send(&client, &sink.url(), 3).await;
        let count = SinkCount::remote(&sink.url()).await;
        assert!(matches!(count, SinkCount::Remote { baseline: 3, .. }));
        assert_eq!(count.requests().await, Some(0));
        send(&client, &sink.url(), 2).await;
        assert_eq!(
            count.requests().await,
            Some(2),
            "its count less the baseline"
        );
        assert_eq!(
            sink.state.requests(),
            5,
            "reading the count is not a request"
        );
    }

    #[tokio::test]
    async fn a_sink_without_a_count_leaves_the_count_unknown() {
        let count = SinkCount::remote("http://127.0.0.1:1/hook").await;
        assert!(matches!(count, SinkCount::Unknown));
        assert_eq!(count.requests().await, None);
    }
}
