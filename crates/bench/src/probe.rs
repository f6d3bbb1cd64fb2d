//! Measuring: percentiles, CPU time by thread group (this process) and by
//! PostgreSQL backend (from /proc), the load average, and a tracing layer that
//! counts the SQL statements sqlx runs, by kind and table, with their time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// p50/p95/p99/max (and count, mean) of values in milliseconds.
pub fn percentiles(values: &mut [f64]) -> Value {
    if values.is_empty() {
        return json!({"n": 0});
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let at = |q: f64| {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        round(values[rank - 1])
    };
    let mean = values.iter().sum::<f64>() / n as f64;
    json!({
        "n": n,
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(values[n - 1]),
        "mean": round(mean),
    })
}

/// Rounded to 0.1.
pub fn round(v: f64) -> f64 {
    round_to(v, 1)
}

/// Rounded to `digits` decimals (and never -0).
pub fn round_to(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale + 0.0
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(-1.0)
}

/// Resident set size of a process, in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The largest resident set size the process has had, in KiB (VmHWM): the
/// kernel's peak, which sampling can miss.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime (seconds) of a /proc stat file, with the comm field.
fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // After "pid (comm) ", field 3 is state: utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU seconds used so far, by group: this process's threads by name
/// (`bench-rt`: the runtime running the engine or the API client, `sink-rt` sink, `sqlx-sqlite-worker` SQLite
/// connections, `other`), and PostgreSQL processes: the backends connected to
/// `pg_database` and the server's own (`pg_server`: WAL writer, checkpointer…).
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    groups: HashMap<String, f64>,
    per_pid: HashMap<u32, f64>,
    pg_backends: HashMap<u32, f64>,
    pg_server: HashMap<u32, f64>,
}

impl CpuSnapshot {
    /// Reads /proc now.
    pub fn take(pg_database: Option<&str>) -> Self {
        let mut snapshot = Self::default();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let path = format!("{}/stat", task.path().display());
                if let Some((comm, cpu)) = stat_cpu(&path) {
                    let group = if comm.starts_with("bench-rt") {
                        "bench_runtime"
                    } else if comm.starts_with("sink-rt") {
                        "sink_threads"
                    } else if comm.starts_with("sqlx-sqlite") {
                        "sqlite_threads"
                    } else {
                        "other_threads"
                    };
                    *snapshot.groups.entry(group.to_owned()).or_default() += cpu;
                    if let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() {
                        snapshot.per_pid.insert(tid, cpu);
                    }
                }
            }
        }
        let Some(database) = pg_database else {
            return snapshot;
        };
        if let Ok(processes) = std::fs::read_dir("/proc") {
            for process in processes.flatten() {
                let Ok(pid) = process.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    continue;
                };
                let cmdline = String::from_utf8_lossy(&cmdline);
                if !cmdline.starts_with("postgres: ") {
                    continue;
                }
                let Some((_, cpu)) = stat_cpu(&format!("/proc/{pid}/stat")) else {
                    continue;
                };
                if cmdline.contains(database) {
                    snapshot.pg_backends.insert(pid, cpu);
                } else if !cmdline.contains(" postgres ") && !cmdline.contains("punctual_") {
                    // Auxiliary processes: "postgres: 15/main: walwriter" and the like.
                    let words = cmdline.split_whitespace().count();
                    if words <= 4 {
                        snapshot.pg_server.insert(pid, cpu);
                    }
                }
            }
        }
        snapshot
    }

    /// CPU seconds spent between `self` and `later`, by group.
    pub fn since(&self, later: &CpuSnapshot) -> Value {
        let mut out = BTreeMap::new();
        for (group, after) in &later.groups {
            let before = self.groups.get(group).copied().unwrap_or(0.0);
            out.insert(group.clone(), round_to(after - before, 2));
        }
        let diff = |a: &HashMap<u32, f64>, b: &HashMap<u32, f64>| -> f64 {
            b.iter()
                .map(|(pid, after)| after - a.get(pid).copied().unwrap_or(0.0))
                .filter(|d| *d > 0.0)
                .sum()
        };
        if !later.pg_backends.is_empty() || !self.pg_backends.is_empty() {
            out.insert(
                "pg_backends".to_owned(),
                round_to(diff(&self.pg_backends, &later.pg_backends), 2),
            );
            out.insert(
                "pg_server".to_owned(),
                round_to(diff(&self.pg_server, &later.pg_server), 2),
            );
        }
        json!(out)
    }
}

/// Each number of a JSON object divided by `by`, rounded to `digits` decimals
/// (what is not a number counts as 0).
pub fn divided(values: &Value, by: f64, digits: i32) -> serde_json::Map<String, Value> {
    values
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(key, value)| {
                    let share = value.as_f64().unwrap_or(0.0) / by;
                    (key.clone(), json!(round_to(share, digits)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// CPU seconds by group (as [`CpuSnapshot::since`] reports them) in µs per unit
/// of work.
pub fn per_unit(cpu_seconds: &Value, units: f64) -> serde_json::Map<String, Value> {
    divided(cpu_seconds, units.max(1.0) / 1e6, 1)
}

/// Statement counts and time, by "VERB table".
#[derive(Debug, Default)]
pub struct QueryCounts {
    by_kind: Mutex<HashMap<String, (u64, f64)>>,
}

impl QueryCounts {
    /// Resets the counts.
    pub fn reset(&self) {
        if let Ok(mut counts) = self.by_kind.lock() {
            counts.clear();
        }
    }

    /// The counts as JSON, divided by `per` (e.g. executions), most frequent first.
    pub fn report(&self, per: f64) -> Value {
        let counts = self.by_kind.lock().map(|c| c.clone()).unwrap_or_default();
        let mut rows: Vec<(String, (u64, f64))> = counts.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        let total: u64 = rows.iter().map(|r| r.1 .0).sum();
        let total_time: f64 = rows.iter().map(|r| r.1 .1).sum();
        let per = per.max(1.0);
        let kinds: Vec<Value> = rows
            .iter()
            .map(|(kind, (count, secs))| {
                json!({
                    "statement": kind,
                    "count": count,
                    "per_execution": (*count as f64 / per * 1000.0).round() / 1000.0,
                    "total_ms": round(secs * 1000.0),
                    "mean_us": round(secs * 1e6 / (*count).max(1) as f64),
                })
            })
            .collect();
        json!({
            "statements": total,
            "statements_per_execution": (total as f64 / per * 100.0).round() / 100.0,
            "statement_time_ms": round(total_time * 1000.0),
            "by_kind": kinds,
        })
    }
}

/// The tracing layer feeding [`QueryCounts`] from sqlx's `sqlx::query` events.
pub struct QueryCounter(pub Arc<QueryCounts>);

#[derive(Default)]
struct StatementVisitor {
    summary: String,
    statement: String,
    elapsed: f64,
}

impl Visit for StatementVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = value;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" => self.summary = format!("{value:?}").trim_matches('"').to_owned(),
            "db.statement" => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for QueryCounter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut visitor = StatementVisitor::default();
        event.record(&mut visitor);
        let sql = if visitor.statement.trim().is_empty() {
            visitor.summary
        } else {
            visitor.statement
        };
        let kind = classify(&sql);
        if let Ok(mut counts) = self.0.by_kind.lock() {
            let entry = counts.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += visitor.elapsed;
        }
    }
}

/// "SELECT executions", "UPDATE jobs", "BEGIN", … from a statement's text.
fn classify(sql: &str) -> String {
    let cleaned = sql.replace(['"', '`', '\n', '\\'], " ");
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let Some(verb) = words.first().map(|w| w.to_ascii_uppercase()) else {
        return "?".to_owned();
    };
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(keyword))
            .and_then(|i| words.get(i + 1))
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))
            .unwrap_or("?")
            .to_owned()
    };
    let table = match verb.as_str() {
        "SELECT" => after("FROM"),
        "INSERT" => after("INTO"),
        "UPDATE" => words
            .get(1)
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))
            .unwrap_or("?")
            .to_owned(),
        "DELETE" => after("FROM"),
        _ => String::new(),
    };
    let upper = cleaned.to_ascii_uppercase();
    if upper.contains("BENCH_WATCH") {
        return "(bench watcher: progress count)".to_owned();
    }
    let mut kind = format!("{verb} {table}").trim().to_owned();
    if verb == "SELECT" {
        if upper.contains("FOR UPDATE") {
            kind.push_str(" FOR UPDATE");
        }
        if upper.contains("COUNT(") {
            kind.push_str(" count");
        }
        if upper.contains(" JOIN ") {
            kind.push_str(" (join)");
        }
    }
    kind
}
