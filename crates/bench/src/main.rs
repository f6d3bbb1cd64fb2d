//! `punctual-bench`: Punctual's benchmarks (issue 7). Each workload prints one
//! JSON line of results on stdout; progress and query plans go to stderr.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432 cargo run --release -p punctual-bench -- w1
//! ```

mod db;
mod probe;
mod serve;
mod sink;
mod workloads;
mod wrk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::probe::{QueryCounter, QueryCounts};
use crate::workloads::{Options, Steady};

/// The allocator `punctual serve` runs with, so the in-process engine is
/// measured as it runs there.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Punctual's benchmarks, against a scratch database on the server DATABASE_URL
/// names (sqlite://… or postgres://…) and an HTTP sink on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "punctual-bench")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// Where the scratch database is made: postgres://user@host:port[/admin-db]
    /// (a new database per run, dropped after) or sqlite://DIR/any.db (a new file
    /// in DIR per run, removed after).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "sqlite:///tmp/bench.db"
    )]
    database_url: String,
    /// Engine: executions in flight (as `[engine] max_in_flight`).
    #[arg(long, global = true, default_value_t = 512)]
    max_in_flight: usize,
    /// Engine: jobs per dispatch transaction (as `[engine] dispatch_batch`).
    #[arg(long, global = true, default_value_t = 500)]
    dispatch_batch: u64,
    /// Engine: database pool size (as `[database] max_connections`).
    #[arg(long, global = true, default_value_t = 10)]
    pool: u32,
    /// Engine: how long before their due time occurrences are claimed, in
    /// milliseconds (as `[engine] lookahead_ms`; default: the engine's own).
    #[arg(long, global = true)]
    lookahead_ms: Option<u64>,
    /// Engine: finished requests waiting to be recorded, at most (as
    /// `[engine] record_queue`; default: the engine's own).
    #[arg(long, global = true)]
    record_queue: Option<usize>,
    /// Sink worker threads.
    #[arg(long, global = true, default_value_t = 2)]
    sink_threads: usize,
    /// Count the SQL statements the engine runs, by kind (adds a little overhead).
    #[arg(long, global = true)]
    count_queries: bool,
    /// Print the plans of the engine's claim queries to stderr while it works
    /// (W1: 0.3 s into the drain; W2: just after the instant; W3: mid-window).
    #[arg(long, global = true)]
    explain: bool,
    /// Keep the scratch database.
    #[arg(long, global = true)]
    keep: bool,
    /// W1–W3: the jobs' concurrency policy (`allow` is the API's default;
    /// `forbid` and `replace` make dispatch check for a run in progress).
    #[arg(long, global = true, default_value = "allow", value_parser = ["allow", "forbid", "replace"])]
    job_concurrency: String,
    /// W1–W3: send the jobs' requests here instead of to the built-in sink
    /// (e.g. the graphile-worker reference's `sink.js`, to compare on one sink).
    #[arg(long, global = true)]
    target_url: Option<String>,
    /// Longest wait for a run to complete, in seconds.
    #[arg(long, global = true, default_value_t = 600)]
    timeout: u64,
    /// The `punctual` binary for W4/W5 (default: next to this one).
    #[arg(long, global = true)]
    punctual_bin: Option<PathBuf>,
    /// `[log] level` of the spawned `punctual serve` (default: its own, info).
    #[arg(long, global = true)]
    serve_log_level: Option<String>,
    /// W1–W3: log the in-process engine as `punctual serve` does (its default
    /// text format, to stderr) at this level, e.g. `info`; by default nothing is
    /// logged, which `serve` would not do.
    #[arg(long, global = true)]
    engine_log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// The sink's ceiling: wrk (if installed) and the built-in client.
    Sink {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Connections.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The built-in sink alone, until SIGINT or SIGTERM: another system (the
    /// reference's drain.js `--sink-port`) or this bench's `--target-url` can
    /// call it, so both compare on one sink in its own process. `GET /__count`
    /// answers its count, as sink.js does. Prints one JSON line with the
    /// requests it answered when stopped.
    ServeSink {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 18081)]
        port: u16,
    },
    /// W1 drain: once-jobs due now, inserted before the engine starts.
    W1 {
        /// Jobs.
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
    },
    /// W2 herd: once-jobs all due at one instant, the engine running and idle.
    W2 {
        /// Jobs.
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        /// Seconds from the insert to the instant they are due.
        #[arg(long, default_value_t = 5.0)]
        lead: f64,
    },
    /// W3 steady: cron jobs in the table, `rate` due per second.
    W3 {
        /// Jobs in the table; several (comma-separated) run one after the other
        /// and report the ratio of their lag p99.
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        jobs: Vec<usize>,
        /// Occurrences due per second.
        #[arg(long, default_value_t = 1_000)]
        rate: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Seconds before the measured window.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Seconds between two runs of an active job (divides 60).
        #[arg(long, default_value_t = 10)]
        period: u32,
    },
    /// W4 API: authenticated GET and POST of a job against `punctual serve`.
    W4 {
        /// Requests in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measured seconds per endpoint.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Measure again while this many cron occurrences per second run (0: no).
        #[arg(long, default_value_t = 0)]
        under_load: usize,
        /// Distinct jobs the GET phases cycle through (1: the same job every time,
        /// as before session 6; concurrent reads of one job share a row).
        #[arg(long, default_value_t = 1_000)]
        read_jobs: usize,
    },
    /// W5 footprint: RSS of `punctual serve` with many jobs stored, and DB size.
    W5 {
        /// Jobs stored.
        #[arg(long, default_value_t = 1_000_000)]
        jobs: usize,
        /// Occurrences per second during the load.
        #[arg(long, default_value_t = 1_000)]
        rate: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 20)]
        load: u64,
        /// Seconds idle before each RSS reading.
        #[arg(long, default_value_t = 5)]
        settle: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let queries = cli.count_queries.then(|| Arc::new(QueryCounts::default()));
    let counter = queries.as_ref().map(|counts| {
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::query", tracing::Level::DEBUG);
        QueryCounter(counts.clone()).with_filter(filter)
    });
    let engine_log = match &cli.engine_log_level {
        Some(level) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_new(level).context("--engine-log-level")?,
                ),
        ),
        None => None,
    };
    if counter.is_some() || engine_log.is_some() {
        let subscriber = tracing_subscriber::registry()
            .with(counter)
            .with(engine_log);
        tracing::subscriber::set_global_default(subscriber).context("install the subscriber")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-rt")
        .enable_all()
        .build()?;
    let engine_log_level = cli.engine_log_level.clone();
    let mut result = runtime.block_on(run(cli, queries))?;
    if let (Some(level), Some(fields)) = (engine_log_level, result.as_object_mut()) {
        fields.insert("engine_log_level".into(), json!(level));
    }
    println!("{result}");
    Ok(())
}

async fn run(cli: Cli, queries: Option<Arc<QueryCounts>>) -> anyhow::Result<serde_json::Value> {
    let options = Options {
        database_url: cli.database_url.clone(),
        max_in_flight: cli.max_in_flight,
        dispatch_batch: cli.dispatch_batch,
        pool: cli.pool,
        lookahead_ms: cli.lookahead_ms,
        record_queue: cli.record_queue,
        sink_threads: cli.sink_threads,
        keep: cli.keep,
        queries,
        explain: cli.explain,
        timeout: Duration::from_secs(cli.timeout),
        job_concurrency: cli.job_concurrency.clone(),
        target_url: cli.target_url.clone(),
    };
    let binary = cli
        .punctual_bin
        .clone()
        .unwrap_or_else(serve::default_binary);
    let log_level = cli.serve_log_level.as_deref();
    match cli.workload {
        Workload::Sink {
            duration,
            concurrency,
        } => {
            let sink = sink::Sink::start(cli.sink_threads)?;
            let duration = Duration::from_secs(duration);
            let wrk = wrk::run(&sink.url(), concurrency, duration, &[]).await;
            let (client_rate, failures) =
                sink::client_ceiling(&sink.url(), concurrency, duration).await?;
            Ok(json!({
                "workload": "sink_ceiling",
                "loadavg_1m_before": probe::loadavg(),
                "sink_threads": cli.sink_threads,
                "connections": concurrency,
                "wrk_req_per_s": wrk.as_ref().map(|w| probe::round(w.rate)),
                "builtin_client_req_per_s": probe::round(client_rate),
                "builtin_client_failures": failures,
                "note": "the load generator shares the 2 cores with the sink: a lower bound of its ceiling",
            }))
        }
        Workload::ServeSink { port } => {
            let sink = sink::Sink::start_on(cli.sink_threads, port)?;
            eprintln!(
                "sink listening on {}; Ctrl-C or SIGTERM stops it",
                sink.url()
            );
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("listen for SIGTERM")?;
            tokio::select! {
                interrupted = tokio::signal::ctrl_c() => interrupted.context("wait for Ctrl-C")?,
                _ = terminate.recv() => {}
            }
            Ok(json!({
                "workload": "serve_sink",
                "url": sink.url(),
                "sink_threads": cli.sink_threads,
                "requests": sink.state.requests(),
            }))
        }
        Workload::W1 { jobs } => {
            let result = workloads::w1_drain(&options, jobs).await?;
            Ok(result)
        }
        Workload::W2 { jobs, lead } => {
            workloads::w2_herd(&options, jobs, Duration::from_secs_f64(lead)).await
        }
        Workload::W3 {
            jobs,
            rate,
            duration,
            warmup,
            period,
        } => {
            let mut runs = Vec::new();
            for size in &jobs {
                let run = workloads::w3_steady(
                    &options,
                    Steady {
                        jobs: *size,
                        rate,
                        duration,
                        warmup,
                        period,
                    },
                )
                .await?;
                eprintln!("{run}");
                runs.push(run);
            }
            if runs.len() == 1 {
                return Ok(runs.remove(0));
            }
            let p99 = |r: &serde_json::Value| r["lag_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
            let (small, large) = (&runs[0], &runs[runs.len() - 1]);
            Ok(json!({
                "workload": "w3_steady",
                "sizes": jobs,
                "lag_p99_ms": runs.iter().map(p99).collect::<Vec<_>>(),
                "p99_ratio_large_over_small": probe::round_to(p99(large) / p99(small), 2),
                "runs": runs,
            }))
        }
        Workload::W4 {
            concurrency,
            duration,
            under_load,
            read_jobs,
        } => {
            serve::w4_api(
                &cli.database_url,
                &binary,
                log_level,
                cli.sink_threads,
                cli.keep,
                serve::ApiLoad {
                    concurrency,
                    duration: Duration::from_secs(duration),
                    under_load_rate: under_load,
                    read_jobs: read_jobs.max(1),
                },
            )
            .await
        }
        Workload::W5 {
            jobs,
            rate,
            load,
            settle,
        } => {
            serve::w5_footprint(
                &cli.database_url,
                &binary,
                log_level,
                cli.sink_threads,
                cli.keep,
                serve::Footprint {
                    jobs,
                    rate,
                    load: Duration::from_secs(load),
                    settle: Duration::from_secs(settle),
                },
            )
            .await
        }
    }
}
