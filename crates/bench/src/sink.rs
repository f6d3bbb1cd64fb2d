//! The loopback HTTP sink the jobs call: hyper on its own multi-threaded runtime,
//! answering 200 with a two-byte body at once. It counts requests and notes, for
//! each, the `webhook-id` (the occurrence's id) and when it arrived, so delivery lag
//! can be measured where the request lands and not only where the engine says.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What the sink saw.
#[derive(Default)]
pub struct SinkState {
    /// Requests answered.
    pub count: AtomicU64,
    /// (occurrence id, arrival) for requests that carried a `webhook-id`.
    arrivals: Mutex<Vec<(Uuid, DateTime<Utc>)>>,
}

impl SinkState {
    /// Takes the arrivals noted so far.
    pub fn take_arrivals(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        self.arrivals
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A running sink.
pub struct Sink {
    /// Where it listens.
    pub address: SocketAddr,
    /// What it saw.
    pub state: Arc<SinkState>,
    _runtime: RuntimeGuard,
}

struct RuntimeGuard(Option<tokio::runtime::Runtime>, CancellationToken);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        self.1.cancel();
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Sink {
    /// The URL jobs call.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Starts the sink on 127.0.0.1 (an ephemeral port) with `threads` worker
    /// threads of its own.
    pub fn start(threads: usize) -> anyhow::Result<Self> {
        Self::start_on(threads, 0)
    }

    /// Starts the sink on 127.0.0.1:`port` (0: an ephemeral one).
    pub fn start_on(threads: usize, port: u16) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("sink-rt")
            .enable_all()
            .build()
            .context("sink runtime")?;
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .context("bind the sink on loopback")?;
        std_listener.set_nonblocking(true)?;
        let address = std_listener.local_addr()?;
        let state = Arc::new(SinkState::default());
        let stop = CancellationToken::new();
        let accept_state = state.clone();
        let accept_stop = stop.clone();
        runtime.spawn(async move {
            let Ok(listener) = TcpListener::from_std(std_listener) else {
                return;
            };
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = accept_stop.cancelled() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &request)) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            address,
            state,
            _runtime: RuntimeGuard(Some(runtime), stop),
        })
    }
}

/// The path that answers the count (as the reference's sink.js does), itself
/// not counted: a bench whose jobs call a sink in another process reads it.
pub const COUNT_PATH: &str = "/__count";

fn answer(state: &SinkState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() == COUNT_PATH {
        let body = format!("{{\"count\":{}}}", state.requests());
        return Response::new(Full::new(Bytes::from(body)));
    }
    let now = Utc::now();
    state.count.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
    {
        if let Ok(mut arrivals) = state.arrivals.lock() {
            arrivals.push((id, now));
        }
    }
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// Load from a built-in client: `concurrency` keep-alive connections sending GETs
/// for `duration`. Returns (requests/s, failures).
pub async fn client_ceiling(
    url: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .no_proxy()
        .build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    for task in tasks {
        let (o, f) = task.await?;
        ok += o;
        failed += f;
    }
    Ok((ok as f64 / started.elapsed().as_secs_f64(), failed))
}
