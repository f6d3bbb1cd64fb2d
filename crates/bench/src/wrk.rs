//! `wrk` (Debian's package) as a load generator, when it is installed. On two
//! cores the load generator competes with what it measures: wrk, in C on one
//! epoll thread, costs ~20 µs of CPU a request where the built-in reqwest
//! client costs several times that, so it leaves the server more of the machine.

use std::time::Duration;

use serde_json::{json, Value};

use crate::probe;

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    /// Requests completed (any status).
    pub requests: u64,
    /// Requests per second over the run.
    pub rate: f64,
    /// Responses outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts ("Socket errors:"): requests
    /// that got no answer, which `requests` does not count.
    pub socket_errors: u64,
    /// Latency percentiles (ms) wrk printed: 50, 75, 90, 99.
    pub latency_ms: Vec<(u8, f64)>,
}

impl WrkRun {
    /// The JSON the workloads print.
    pub fn to_json(&self) -> Value {
        let ok = self.requests.saturating_sub(self.non_2xx) as f64;
        let share = if self.requests == 0 {
            0.0
        } else {
            ok / self.requests as f64
        };
        let latency: serde_json::Map<String, Value> = self
            .latency_ms
            .iter()
            .map(|(p, ms)| (format!("p{p}"), json!(probe::round_to(*ms, 2))))
            .collect();
        json!({
            "load_generator": "wrk -t1",
            "requests": self.requests,
            "ok_per_s": probe::round(self.rate * share),
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "latency_ms": latency,
        })
    }
}

/// Runs `wrk -t1 -c<connections> -d<duration> --latency` against `url` with
/// these request headers; None when wrk is not installed or printed nothing usable.
pub async fn run(
    url: &str,
    connections: usize,
    duration: Duration,
    headers: &[String],
) -> Option<WrkRun> {
    run_with(url, connections, duration, headers, None).await
}

async fn run_with(
    url: &str,
    connections: usize,
    duration: Duration,
    headers: &[String],
    script: Option<&std::path::Path>,
) -> Option<WrkRun> {
    let mut command = tokio::process::Command::new("wrk");
    command.args([
        "-t1".to_owned(),
        format!("-c{connections}"),
        format!("-d{}s", duration.as_secs().max(1)),
        "--latency".to_owned(),
    ]);
    for header in headers {
        command.arg("-H").arg(header);
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().await.ok()?;
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Like [`run`], cycling through `urls` (all on `base`) with a Lua script when
/// there are several.
pub async fn run_paths(
    base: &str,
    urls: &[String],
    connections: usize,
    duration: Duration,
    headers: &[String],
) -> Option<WrkRun> {
    let [url] = urls else {
        let script = std::env::temp_dir().join(format!("punctual-wrk-{}.lua", std::process::id()));
        let paths: Option<Vec<&str>> = urls.iter().map(|url| url.strip_prefix(base)).collect();
        std::fs::write(&script, cycle_script(&paths?)).ok()?;
        let run = run_with(base, connections, duration, headers, Some(&script)).await;
        let _ = std::fs::remove_file(&script);
        return run;
    };
    run(url, connections, duration, headers).await
}

/// A wrk script whose requests cycle through `paths`.
fn cycle_script(paths: &[&str]) -> String {
    let mut script = String::from("local paths = {\n");
    for path in paths {
        script.push_str(&format!("  {path:?},\n"));
    }
    script.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n",
    );
    script
}

/// Reads wrk's summary.
pub fn parse(text: &str) -> Option<WrkRun> {
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<u64>().ok())?;
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 2, write 0, timeout 12"
    let socket_errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let latency_ms = text
        .lines()
        .skip_while(|l| !l.contains("Latency Distribution"))
        .skip(1)
        .take(4)
        .filter_map(|l| {
            let (percent, value) = l.trim().split_once('%')?;
            Some((
                percent.trim().parse::<u8>().ok()?,
                milliseconds(value.trim())?,
            ))
        })
        .collect();
    Some(WrkRun {
        requests,
        rate,
        non_2xx,
        socket_errors,
        latency_ms,
    })
}

/// "812.00us", "8.66ms", "1.02s" in milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_script_lists_every_path_once_and_wraps_around() {
        let script = cycle_script(&["/a/1", "/a/2"]);
        assert!(script.starts_with("local paths = {\n  \"/a/1\",\n  \"/a/2\",\n}\n"));
        assert!(script.contains("i = i % #paths + 1"));
        assert!(script.contains("wrk.format(nil, paths[i])"));
    }

    const SUMMARY: &str = "Running 8s test @ http://127.0.0.1:18080/api/v1/orgs/acme/jobs/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.19ms    3.10ms  41.53ms   75.89%
    Req/Sec     7.03k   404.73     7.56k    87.50%
  Latency Distribution
     50%  812.00us
     75%   10.47ms
     90%   12.64ms
     99%    1.02s
  55908 requests in 8.00s, 41.00MB read
  Socket errors: connect 0, read 2, write 1, timeout 12
  Non-2xx or 3xx responses: 8
Requests/sec:   6988.50
Transfer/sec:      5.13MB
";

    #[test]
    fn reads_the_rate_the_requests_the_failures_and_the_percentiles() {
        let run = parse(SUMMARY).expect("a summary");
        assert_eq!(run.requests, 55_908);
        assert_eq!(run.non_2xx, 8);
        assert_eq!(run.socket_errors, 15);
        assert!((run.rate - 6988.5).abs() < 1e-9);
        assert_eq!(
            run.latency_ms,
            vec![(50, 0.812), (75, 10.47), (90, 12.64), (99, 1020.0)]
        );
        let json = run.to_json();
        assert_eq!(json["ok_per_s"], 6987.5);
        assert_eq!(json["latency_ms"]["p99"], 1020.0);
        assert_eq!(json["socket_errors"], 15);
    }

    #[test]
    fn a_summary_without_a_rate_is_not_a_run() {
        assert_eq!(
            parse("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
    }
}
