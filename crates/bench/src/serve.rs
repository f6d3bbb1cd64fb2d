//! W4 API and W5 footprint: a real `punctual serve` (the release binary) on a
//! scratch database, driven over HTTP on loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DurationRound, TimeDelta, Utc};
use punctual_domain::Schedule;
use punctual_persistence::entities::execution;
use punctual_persistence::sea_orm::{ConnectionTrait, EntityTrait};
use punctual_persistence::{wakeup, Backend, Database};
use punctual_scheduler::EngineConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::db::{self, Scratch, Timing};
use crate::probe;
use crate::sink::Sink;

/// A running `punctual serve`.
pub struct Serve {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// The `punctual` binary next to this one (both are built into the same target
/// directory), unless given.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("punctual"))
        .unwrap_or_else(|| PathBuf::from("punctual"))
}

impl Serve {
    /// Starts `binary serve` with `DATABASE_URL`, `PORT=0` and loopback targets
    /// allowed, and waits for its "punctual listening on http://ADDR" line.
    pub async fn spawn(
        binary: &Path,
        database_url: &str,
        log_level: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PORT", "0")
            .env("BIND", "127.0.0.1")
            .env("PUNCTUAL__OUTBOUND__ALLOW_PRIVATE_NETWORKS", "true")
            // The benchmark measures the server, not one API key's allowance.
            .env("PUNCTUAL__RATE_LIMIT__ENABLED", "false")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(level) = log_level {
            command.env("PUNCTUAL__LOG__LEVEL", level);
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "start {} (build it: cargo build --release -p punctual-server)",
                binary.display()
            )
        })?;
        let pid = child.id().context("the child's pid")?;
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (found, address) = oneshot::channel::<String>();
        // Read its output to the end so it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut found = Some(found);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("punctual listening on http://").nth(1) {
                    if let Some(sender) = found.take() {
                        let _ = sender.send(rest.trim().to_owned());
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("ERROR") || line.contains("punctual:") {
                    eprintln!("serve: {line}");
                }
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(60), address)
            .await
            .context("punctual serve did not print its address within 60 s")?
            .context("punctual serve ended before listening")?;
        Ok(Self {
            child,
            pid,
            base: format!("http://{address}"),
        })
    }

    /// VmRSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        mib_of(probe::rss_kib(self.pid))
    }

    /// VmHWM (the peak VmRSS so far) in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        mib_of(probe::peak_rss_kib(self.pid))
    }

    /// CPU seconds used so far (utime + stime).
    pub fn cpu_s(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|text| {
                let close = text.rfind(')')?;
                let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
                let u: f64 = fields.get(11)?.parse().ok()?;
                let s: f64 = fields.get(12)?.parse().ok()?;
                Some((u + s) / 100.0)
            })
            .unwrap_or(0.0)
    }

    /// SIGTERM, then up to 40 s for the graceful stop, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// A registered user's organization with an admin API key.
struct Account {
    slug: String,
    org_id: Uuid,
    api_key: String,
}

/// KiB in MiB, rounded; -1 when the reading failed.
fn mib_of(kib: Option<u64>) -> f64 {
    kib.map(|k| probe::round(k as f64 / 1024.0)).unwrap_or(-1.0)
}

async fn register(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
) -> anyhow::Result<Account> {
    let slug = "bench".to_owned();
    let response = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({
            "email": "bench@example.com",
            "password": "a long bench password 42",
            "organization": {"name": "Benchmarks", "slug": slug},
        }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("register: {status} {body}");
    }
    let token = body["access_token"]
        .as_str()
        .context("register: no access_token")?
        .to_owned();
    let org_id = body["organization"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .context("register: no organization id")?;
    // New organizations start on `free` (25 jobs): move it to the largest plan
    // of the default configuration, as a platform admin would.
    let database = db::connect(database_url, 1).await?;
    database
        .conn()
        .execute_unprepared(&format!(
            "UPDATE organizations SET plan = '{}' WHERE slug = '{slug}'",
            db::PLAN
        ))
        .await?;
    database.close().await;
    let response = client
        .post(format!("{base}/api/v1/orgs/{slug}/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "role": "admin"}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("create an API key: {status} {body}");
    }
    let api_key = body["api_key"]
        .as_str()
        .context("no api_key in the answer")?
        .to_owned();
    Ok(Account {
        slug,
        org_id,
        api_key,
    })
}

/// A job the API accepts that will not run during the benchmark (yearly).
fn job_document(n: u64) -> Value {
    json!({
        "name": format!("api bench {n}"),
        "request": {"url": "http://127.0.0.1:9/hook", "method": "GET", "timeout_ms": 5000},
        "schedule": {"type": "cron", "cron": "0 0 1 1 *", "timezone": "UTC"},
        "retry": {"max_attempts": 1},
    })
}

/// Creates `count` jobs, 32 at a time; their ids.
async fn create_jobs(
    client: &reqwest::Client,
    key: &str,
    jobs_url: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    let mut creating = tokio::task::JoinSet::new();
    for n in 0..count {
        if creating.len() >= 32 {
            if let Some(done) = creating.join_next().await {
                ids.push(done??);
            }
        }
        let request = client
            .post(jobs_url)
            .bearer_auth(key)
            .json(&job_document(1_000_000 + n as u64));
        creating.spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let body: Value = response.json().await?;
            if status.as_u16() != 201 {
                bail!("create a job to read: {status} {body}");
            }
            Ok::<_, anyhow::Error>(body["id"].as_str().context("created job id")?.to_owned())
        });
    }
    while let Some(done) = creating.join_next().await {
        ids.push(done??);
    }
    Ok(ids)
}

#[derive(Clone)]
enum Call {
    /// GETs cycling through these URLs.
    Get(std::sync::Arc<Vec<String>>),
    PostJob(String),
}

/// `concurrency` workers sending `call` back to back for `duration` (after 1 s
/// of warm-up that is not counted): req/s, latency percentiles, statuses.
async fn load(
    client: &reqwest::Client,
    key: &str,
    call: Call,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Value> {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let deadline = warm_until + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let key = key.to_owned();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
            let mut n = (worker as u64) << 40;
            // Worker w reads URLs w + c, w + 2c, … (c: the concurrency), modulo their number.
            let mut next_url = worker;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                n += 1;
                let request = match &call {
                    Call::Get(urls) => {
                        next_url = (next_url + concurrency) % urls.len().max(1);
                        match urls.get(next_url) {
                            Some(url) => client.get(url),
                            None => break,
                        }
                    }
                    Call::PostJob(url) => client.post(url).json(&job_document(n)),
                };
                let result = request.bearer_auth(&key).send().await;
                let code = match result {
                    Ok(response) => {
                        let code = response.status().as_u16();
                        let _ = response.bytes().await;
                        code
                    }
                    Err(_) => 0,
                };
                if now >= warm_until {
                    latencies.push(now.elapsed().as_secs_f64() * 1000.0);
                    *statuses.entry(code).or_default() += 1;
                }
            }
            (latencies, statuses)
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses: std::collections::BTreeMap<String, u64> = Default::default();
    let mut ok = 0u64;
    for task in tasks {
        let (l, s) = task.await?;
        latencies.extend(l);
        for (code, n) in s {
            if (200..300).contains(&code) {
                ok += n;
            }
            *statuses.entry(code.to_string()).or_default() += n;
        }
    }
    let seconds = duration.as_secs_f64();
    Ok(json!({
        "requests": latencies.len(),
        "ok_per_s": probe::round(ok as f64 / seconds),
        "latency_ms": probe::percentiles(&mut latencies),
        "statuses": statuses,
    }))
}

async fn pg_snapshot(scratch: &Scratch) -> anyhow::Result<Option<Value>> {
    match scratch.backend {
        Backend::Postgres => Ok(Some(db::pg_stats(&scratch.url).await?)),
        Backend::Sqlite => Ok(None),
    }
}

/// W4 settings.
#[derive(Debug, Clone, Copy)]
pub struct ApiLoad {
    /// Requests in flight.
    pub concurrency: usize,
    /// Measured seconds per endpoint.
    pub duration: Duration,
    /// Also measure while this many cron occurrences per second run (0: no).
    pub under_load_rate: usize,
    /// Distinct jobs the GET phases cycle through.
    pub read_jobs: usize,
}

/// Runs one load phase and adds what it cost per request: CPU of `punctual
/// serve`, of this process (the load generator when it is the built-in client)
/// and of the PostgreSQL backends, and PostgreSQL's row statistics.
async fn measure<F, Fut>(serve: &Serve, scratch: &Scratch, phase: F) -> anyhow::Result<Value>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let pg_before = pg_snapshot(scratch).await?;
    let serve_before = serve.cpu_s();
    let cpu_before = probe::CpuSnapshot::take(scratch.pg_name.as_deref());
    let mut result = phase().await?;
    let cpu_after = probe::CpuSnapshot::take(scratch.pg_name.as_deref());
    let requests = result["requests"].as_f64().unwrap_or(0.0).max(1.0);
    let Some(map) = result.as_object_mut() else {
        return Ok(result);
    };
    map.insert(
        "serve_cpu_us_per_request".into(),
        json!(probe::round(
            (serve.cpu_s() - serve_before) * 1e6 / requests
        )),
    );
    map.insert(
        "cpu_us_per_request".into(),
        Value::Object(probe::per_unit(&cpu_before.since(&cpu_after), requests)),
    );
    if let Some(before) = pg_before {
        // Idle backends flush their statistics within a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = db::pg_stats(&scratch.url).await?;
        let diff = db::diff_json(&before, &after);
        map.insert(
            "pg_stat_per_request".into(),
            Value::Object(probe::divided(&diff, requests, 2)),
        );
    }
    Ok(result)
}

/// W4: authenticated reads and writes against `punctual serve`.
pub async fn w4_api(
    database_url: &str,
    binary: &Path,
    log_level: Option<&str>,
    sink_threads: usize,
    keep: bool,
    settings: ApiLoad,
) -> anyhow::Result<Value> {
    let loadavg = probe::loadavg();
    let mut scratch = Scratch::create(database_url).await?;
    if keep {
        scratch.keep();
    }
    let serve = Serve::spawn(binary, &scratch.url, log_level).await?;
    let result = async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency)
            .no_proxy()
            .build()?;
        let account = register(&client, &serve.base, &scratch.url).await?;
        let jobs_url = format!("{}/api/v1/orgs/{}/jobs", serve.base, account.slug);
        // The jobs API is there when a create answers 201.
        let probe_job = client
            .post(&jobs_url)
            .bearer_auth(&account.api_key)
            .json(&job_document(0))
            .send()
            .await?;
        let jobs_api = probe_job.status().as_u16() == 201;
        let mut phases: Vec<(&str, Call)> = Vec::new();
        if jobs_api {
            let body: Value = probe_job.json().await?;
            let id = body["id"].as_str().context("created job id")?.to_owned();
            let mut ids = create_jobs(&client, &account.api_key, &jobs_url, settings.read_jobs - 1)
                .await?;
            ids.push(id);
            let urls = ids.iter().map(|id| format!("{jobs_url}/{id}")).collect();
            phases.push(("get_job", Call::Get(std::sync::Arc::new(urls))));
            phases.push(("post_job", Call::PostJob(jobs_url.clone())));
        } else {
            eprintln!(
                "the jobs API answered {}: measuring GET /api/v1/me and GET /api/v1/orgs/{{org}} instead",
                probe_job.status()
            );
            let single = |url: String| Call::Get(std::sync::Arc::new(vec![url]));
            phases.push(("get_me", single(format!("{}/api/v1/me", serve.base))));
            phases.push((
                "get_org",
                single(format!("{}/api/v1/orgs/{}", serve.base, account.slug)),
            ));
        }
        let run = |call: &Call| {
            load(
                &client,
                &account.api_key,
                call.clone(),
                settings.concurrency,
                settings.duration,
            )
        };
        let mut idle = serde_json::Map::new();
        let cpu_before = serve.cpu_s();
        let started = Instant::now();
        for (name, call) in &phases {
            let measured = measure(&serve, &scratch, || run(call)).await?;
            idle.insert((*name).to_owned(), measured);
        }
        // The GET again with wrk, whose own CPU leaves the server more of the cores.
        if let Some((name, Call::Get(urls))) = phases.first() {
            let header = format!("authorization: Bearer {}", account.api_key);
            let measured = measure(&serve, &scratch, || async {
                let run = crate::wrk::run_paths(
                    &serve.base,
                    urls,
                    settings.concurrency,
                    settings.duration,
                    &[header],
                )
                .await
                .context("wrk")?;
                Ok(run.to_json())
            })
            .await;
            match measured {
                Ok(measured) => {
                    idle.insert(format!("{name}_wrk"), measured);
                }
                Err(error) => eprintln!("no wrk phase ({error:#}): install Debian's wrk for it"),
            }
        }
        let serve_cpu_share = (serve.cpu_s() - cpu_before) / started.elapsed().as_secs_f64();
        let mut out = serde_json::Map::new();
        out.insert("workload".into(), json!("w4_api"));
        out.insert(
            "backend".into(),
            json!(match scratch.backend {
                Backend::Postgres => "postgres",
                Backend::Sqlite => "sqlite",
            }),
        );
        out.insert("loadavg_1m_before".into(), json!(loadavg));
        out.insert("concurrency".into(), json!(settings.concurrency));
        out.insert("duration_s".into(), json!(settings.duration.as_secs()));
        out.insert("jobs_api".into(), json!(jobs_api));
        out.insert("read_jobs".into(), json!(settings.read_jobs));
        out.insert(
            "serve_log_level".into(),
            json!(log_level.unwrap_or("default (info)")),
        );
        out.insert("idle".into(), Value::Object(idle));
        out.insert(
            "serve_cpu_cores_used".into(),
            json!(probe::round_to(serve_cpu_share, 2)),
        );
        out.insert("serve_rss_mib".into(), json!(serve.rss_mib()));
        if settings.under_load_rate > 0 {
            let database = db::connect(&scratch.url, 2).await?;
            let sink = Sink::start(sink_threads)?;
            let background = start_cron_load(
                &database,
                account.org_id,
                &sink,
                settings.under_load_rate,
            )
            .await?;
            let mut loaded = serde_json::Map::new();
            for (name, call) in &phases {
                loaded.insert((*name).to_owned(), run(call).await?);
            }
            let served = sink.state.requests() - background;
            stop_cron_load(&database).await?;
            database.close().await;
            out.insert(
                "under_load".into(),
                json!({
                    "due_per_s": settings.under_load_rate,
                    "sink_requests_during": served,
                    "endpoints": loaded,
                }),
            );
        }
        Ok::<_, anyhow::Error>(Value::Object(out))
    }
    .await;
    serve.stop().await?;
    scratch.remove().await?;
    result
}

/// Inserts `rate × 10` cron jobs every 10 s (6-field) calling `sink`, spread so
/// `rate` are due each second, wakes the engines (PostgreSQL NOTIFY; SQLite
/// engines find them at their next idle wake-up, ≤ 30 s), and waits until the
/// sink sees requests. Returns the sink's count when the load is running.
async fn start_cron_load(
    database: &Database,
    org: Uuid,
    sink: &Sink,
    rate: usize,
) -> anyhow::Result<u64> {
    let period = 10u32;
    // SQLite has no NOTIFY: a load inserted behind the server's back is found at
    // its next idle wake-up (the engine's `max_idle`, which `serve` leaves at its
    // default), so it starts past that; until session 17 it started at once
    // there, and its first occurrences were late by up to 30 s (W5's "SQLite
    // lag" of earlier figures).
    let lead = match database.backend() {
        Backend::Postgres => Duration::from_secs(2),
        Backend::Sqlite => EngineConfig::default().max_idle + Duration::from_secs(2),
    };
    let start = (Utc::now() + TimeDelta::from_std(lead)?)
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or_else(|_| Utc::now())
        + TimeDelta::seconds(1);
    let mut schedules = Vec::new();
    for k in 0..period {
        let expr = format!("{k}/{period} * * * * *");
        let schedule =
            Schedule::parse_cron(&expr, "UTC").map_err(|e| anyhow::anyhow!("{expr}: {e}"))?;
        let next = schedule
            .next_after(start - TimeDelta::milliseconds(1))
            .context("next run")?;
        schedules.push((expr, next));
    }
    let url = sink.url();
    let now = Utc::now();
    db::insert_jobs(database, rate * period as usize, |i| {
        let (expr, next) = &schedules[i % schedules.len()];
        let mut row = db::job_row(
            org,
            &url,
            Timing::Cron {
                expr: expr.clone(),
                next: *next,
            },
            now,
        );
        row.name = punctual_persistence::sea_orm::ActiveValue::Set("bench-load".to_owned());
        row
    })
    .await?;
    if database.backend() == Backend::Postgres {
        wakeup::notify_all(database).await?;
    }
    let deadline = Instant::now() + lead + Duration::from_secs(45);
    while sink.state.requests() < rate as u64 {
        if Instant::now() > deadline {
            bail!("the engine of punctual serve did not start the load within 45 s of its start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(sink.state.requests())
}

async fn stop_cron_load(database: &Database) -> anyhow::Result<()> {
    database
        .conn()
        .execute_unprepared(
            "UPDATE jobs SET enabled = FALSE, next_run_at = NULL WHERE name = 'bench-load'",
        )
        .await?;
    Ok(())
}

/// W5 settings.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Jobs stored.
    pub jobs: usize,
    /// Occurrences per second during the load.
    pub rate: usize,
    /// Seconds of load.
    pub load: Duration,
    /// Seconds idle before measuring.
    pub settle: Duration,
}

/// W5: RSS of `punctual serve` with `jobs` stored, idle and under a short cron
/// load, and the database's size.
pub async fn w5_footprint(
    database_url: &str,
    binary: &Path,
    log_level: Option<&str>,
    sink_threads: usize,
    keep: bool,
    settings: Footprint,
) -> anyhow::Result<Value> {
    let loadavg = probe::loadavg();
    let mut scratch = Scratch::create(database_url).await?;
    if keep {
        scratch.keep();
    }
    let result = async {
        let database = db::connect(&scratch.url, 4).await?;
        let org = db::create_organization(&database).await?;
        let sink = Sink::start(sink_threads)?;
        let not_before = Utc::now() + TimeDelta::hours(1);
        let url = sink.url();
        let now = Utc::now();
        let insert_s = db::insert_jobs(&database, settings.jobs, |i| {
            db::job_row(org, &url, db::dormant_timing(i, not_before), now)
        })
        .await?;
        if database.backend() == Backend::Postgres {
            database.conn().execute_unprepared("ANALYZE jobs").await?;
        }
        let size_stored = scratch.size_bytes().await?;
        let serve = Serve::spawn(binary, &scratch.url, log_level).await?;
        let started_rss = serve.rss_mib();
        tokio::time::sleep(settings.settle).await;
        let idle_rss = serve.rss_mib();
        let background = start_cron_load(&database, org, &sink, settings.rate).await?;
        let load_started = Instant::now();
        let mut peak: f64 = 0.0;
        while load_started.elapsed() < settings.load {
            peak = peak.max(serve.rss_mib());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let served = sink.state.requests() - background;
        stop_cron_load(&database).await?;
        tokio::time::sleep(settings.settle).await;
        let after_rss = serve.rss_mib();
        let high_water_mark = serve.peak_rss_mib();
        // How late the load's occurrences started (the engine's lag_ms).
        let mut lags: Vec<f64> = execution::Entity::find()
            .all(database.conn())
            .await?
            .into_iter()
            .filter(|e| e.attempt == 1)
            .filter_map(|e| e.lag_ms.map(|l| l as f64))
            .collect();
        serve.stop().await?;
        let size_after = scratch.size_bytes().await?;
        database.close().await;
        let mib = |b: u64| probe::round(b as f64 / 1_048_576.0);
        Ok::<_, anyhow::Error>(json!({
            "workload": "w5_footprint",
            "backend": match scratch.backend { Backend::Postgres => "postgres", Backend::Sqlite => "sqlite" },
            "loadavg_1m_before": loadavg,
            "jobs_stored": settings.jobs,
            "insert_s": probe::round_to(insert_s, 1),
            "serve_log_level": log_level.unwrap_or("default (info)"),
            "rss_mib": {
                "at_start": started_rss,
                "idle": idle_rss,
                "peak_under_load": peak,
                "after_load": after_rss,
                "high_water_mark": high_water_mark,
            },
            "load": {
                "due_per_s": settings.rate,
                "seconds": settings.load.as_secs(),
                "sink_requests": served,
                "lag_ms": probe::percentiles(&mut lags),
            },
            "db_size_mib": {
                "with_jobs": mib(size_stored),
                "after_load": mib(size_after),
            },
        }))
    }
    .await;
    scratch.remove().await?;
    result
}
