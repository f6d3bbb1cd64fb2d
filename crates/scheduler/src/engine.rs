//! The engine loop of one node: dispatch due jobs into occurrences, start
//! runnable executions in a bounded pool, keep their leases, rescue the leases
//! of dead nodes, and drain on shutdown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use punctual_domain::{PlanLimits, RetryPolicy, UsagePeriod};
use punctual_persistence::audit::{self, NewAuditEvent};
use punctual_persistence::engine::{self as store, AttemptOutcome, ClaimedExecution, NewExecution};
use punctual_persistence::entities::job;
use punctual_persistence::wakeup::{self, WakeupListener};
use punctual_persistence::{quota, Database, PersistenceError};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::delivery::{Deliverer, Delivery, DeliveryResult, DeliveryStatus};
use crate::dispatch::{plan_occurrence, schedule_of};
use crate::notify::{notify, NotificationKind};
use crate::signing::SigningKeys;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's name in execution rows (unique per process).
    pub node_id: String,
    /// Let jobs reach loopback and private addresses.
    pub allow_private_networks: bool,
    /// Executions running at once on this node.
    pub max_in_flight: usize,
    /// Jobs dispatched per transaction.
    pub dispatch_batch: u64,
    /// How long a running execution is ours without renewal.
    pub lease: Duration,
    /// How often expired leases of other (dead) nodes are looked for.
    pub rescue_interval: Duration,
    /// Longest sleep without a wake-up (a safety net; wake-ups come first).
    pub max_idle: Duration,
    /// Response bytes kept per execution.
    pub response_body_limit: usize,
    /// Consecutive failed occurrences before a job is disabled (0: never).
    pub auto_disable_after: i32,
    /// An occurrence reached later than this was missed (downtime); later but within it, it still runs.
    pub missed_run_tolerance: Duration,
    /// How long shutdown waits for in-flight executions before handing them back.
    pub shutdown_grace: Duration,
    /// Plans by name: monthly execution quotas and history retention. An
    /// organization on a plan missing here is not limited.
    pub plans: Arc<BTreeMap<String, PlanLimits>>,
    /// At most one failure notification per job within this window.
    pub notification_coalesce: Duration,
    /// How often executions past retention are pruned.
    pub retention_interval: Duration,
    /// How long audit events are kept (None: for ever); pruned with the
    /// executions, by the same batches.
    pub audit_retention: Option<Duration>,
    /// Executions deleted per pruning statement.
    pub retention_batch: u64,
    /// How long before their due time occurrences of `allow` jobs are
    /// dispatched and claimed, so that their requests start on the instant
    /// rather than after the database work (zero: dispatch when due).
    pub lookahead: Duration,
    /// Occurrences this node holds claimed ahead of their due time, at most.
    pub max_claimed_ahead: usize,
    /// How often the claims made ahead are checked against their jobs even
    /// when no change was told: a change made on another node reaches this one
    /// by a PostgreSQL notification, which a listener down or a failed notify
    /// loses, and a paused job must not run for that. Without the notification,
    /// a pause made less than about this long before the due time may not stop
    /// that occurrence.
    pub recheck_ahead_every: Duration,
    /// Finished requests waiting to be recorded, at most. Past it a finishing
    /// execution keeps its slot until there is room, so a database slower than
    /// the targets holds requests back. These are the attempts a crash between
    /// response and record delivers again (with the `max_in_flight` running).
    pub record_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node-{}", &Uuid::new_v4().simple().to_string()[..12]),
            allow_private_networks: false,
            max_in_flight: 512,
            dispatch_batch: 500,
            lease: Duration::from_secs(30),
            rescue_interval: Duration::from_secs(5),
            max_idle: Duration::from_secs(30),
            response_body_limit: 16 * 1024,
            auto_disable_after: 15,
            missed_run_tolerance: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            plans: Arc::new(BTreeMap::new()),
            notification_coalesce: Duration::from_secs(600),
            retention_interval: Duration::from_secs(60),
            audit_retention: Some(Duration::from_secs(365 * 24 * 60 * 60)),
            retention_batch: 500,
            // Half a second off the whole seconds cron instants fall on: the
            // claims for a second are taken between two seconds' herds.
            lookahead: Duration::from_millis(2500),
            max_claimed_ahead: 20_000,
            recheck_ahead_every: Duration::from_millis(500),
            // A herd of 20,000 starts on time while its outcomes are recorded
            // behind it (W2 in BENCHMARKS.md); bodies are capped, so memory is
            // bounded (at most 16,384 × response_body_limit).
            record_queue: 16_384,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PersistenceError),
    /// The organization has no signing secret in force (it was deleted): a
    /// request would go out unsigned, so it does not go out.
    #[error("the organization has no signing secret")]
    NoSigningSecret,
}

impl From<punctual_persistence::sea_orm::DbErr> for EngineError {
    fn from(error: punctual_persistence::sea_orm::DbErr) -> Self {
        Self::Store(PersistenceError::Query(error))
    }
}

type Result<T> = std::result::Result<T, EngineError>;

/// The job engine of one node.
pub struct Engine {
    database: Database,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    deliverer: Deliverer,
    mail_wakeup: Option<Arc<Notify>>,
}

pub(crate) struct Inner {
    pub(crate) database: Database,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) deliverer: Deliverer,
    pub(crate) wake: Notify,
    pub(crate) webhook_wake: Notify,
    pub(crate) mail_wakeup: Option<Arc<Notify>>,
    pub(crate) in_flight: Mutex<HashMap<Uuid, CancellationToken>>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) tasks: TaskTracker,
    pub(crate) completions: mpsc::Sender<Completion>,
    pub(crate) secret_cache: Mutex<HashMap<Uuid, CachedKeys>>,
    /// One reader of signing secrets at a time: a burst of executions of an
    /// organization whose entry expired waits for one query, not one each.
    pub(crate) secret_reader: tokio::sync::Mutex<()>,
    /// Room for occurrences claimed ahead of their due time.
    pub(crate) ahead: Arc<Semaphore>,
    /// Room for due occurrences claimed by this node and waiting for a slot
    /// (as many as there are slots: more would keep work from other nodes).
    pub(crate) queued: Arc<Semaphore>,
    /// Claimed ahead and not started, by execution id. A change to the job
    /// before the start gives the claim up (see [`Inner::revalidate_ahead`]).
    pub(crate) waiting: Mutex<HashMap<Uuid, WaitingClaim>>,
    /// Due and claimed by this node, waiting for a slot, by execution id: if
    /// the shutdown grace ends before they start, they go back to pending
    /// (never sent, so neither failed nor counted). Locked inside `waiting`.
    pub(crate) waiting_for_slot: Mutex<HashMap<Uuid, WaitingClaim>>,
    /// Executions whose request is over, waiting for their outcome to be
    /// recorded: the end of the shutdown grace leaves them to the recorder
    /// (interrupting one would send it again). Locked inside `in_flight`.
    pub(crate) requests_over: Mutex<HashSet<Uuid>>,
    /// Told when jobs may have changed (this node's API, or another node's).
    pub(crate) jobs_changed: Notify,
    /// Occurrences claimed ahead whose instant has come and that wait for a
    /// slot: while there are any, a herd is starting and the recorder waits.
    pub(crate) herd_waiting: AtomicUsize,
    /// How many times jobs may have changed: a dispatch that saw this move
    /// while it ran may have claimed ahead for a job changed just before its
    /// claims were held in `waiting`, so it asks for a revalidation after.
    pub(crate) jobs_changes: AtomicU64,
}

/// An occurrence claimed ahead of its time that has not started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitingClaim {
    job_id: Uuid,
    /// The job's `updated_at` when it was claimed.
    job_updated_at: DateTime<Utc>,
    /// The occurrence claimed.
    scheduled_for: DateTime<Utc>,
    /// Whose monthly quota the claim was counted in, and in which month (that
    /// of this instant): where it is handed back if it is given up.
    organization_id: Uuid,
    charged_at: DateTime<Utc>,
}

impl WaitingClaim {
    fn quota_charge(&self) -> (Uuid, DateTime<Utc>) {
        (self.organization_id, self.charged_at)
    }
}

/// Counts one occurrence of a starting herd while it waits for its slot.
struct HerdMember<'a>(&'a AtomicUsize);

impl<'a> HerdMember<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for HerdMember<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An organization's signing keys and when their secrets were read.
pub(crate) type CachedKeys = (std::time::Instant, Arc<SigningKeys>);

/// A finished request waiting to be recorded; `done` is told once it is.
pub(crate) struct Completion {
    claim: ClaimedExecution,
    result: DeliveryResult,
    started: DateTime<Utc>,
    done: oneshot::Sender<()>,
}

/// What a spawned execution holds: a slot to run in now, or (claimed ahead)
/// room among the executions waiting for their time.
pub(crate) enum Slot {
    Running(OwnedSemaphorePermit),
    Ahead(Option<OwnedSemaphorePermit>),
}

/// Completions recorded per transaction, at most: whatever queued while the
/// last one committed.
const RECORD_BATCH: usize = 1024;
/// How long, at most, outcomes wait for a starting herd to be under way: the
/// two share the CPU, and a request late by the time its neighbours' records
/// take is late; a record a second later is not.
const HERD_RECORD_DEFERRAL: Duration = Duration::from_secs(2);
/// How long an organization's signing secrets are reused before being re-read;
/// a rotation keeps the old secret valid for 24 h, so this is never a gap.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(5);

impl Engine {
    /// An engine working on `database` with the system clock.
    pub fn new(database: Database, config: EngineConfig) -> Result<Self> {
        let deliverer = Deliverer::new(
            config.allow_private_networks,
            config.response_body_limit,
            config.max_in_flight,
        )?;
        Ok(Self {
            database,
            clock: Arc::new(SystemClock),
            config,
            deliverer,
            mail_wakeup: None,
        })
    }

    /// Uses `clock` instead of the system clock (tests).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// Wakes the email sender when a notification email is queued.
    pub fn with_mail_wakeup(self, mail_wakeup: Arc<Notify>) -> Self {
        Self {
            mail_wakeup: Some(mail_wakeup),
            ..self
        }
    }

    /// Starts the engine. `external_wake` is notified by the API after a job is
    /// created or changed on this node; the engine wakes, and on PostgreSQL tells
    /// the other nodes too.
    pub fn start(self, external_wake: Option<Arc<Notify>>) -> EngineHandle {
        let stop = CancellationToken::new();
        let (completions, completed) = mpsc::channel(self.config.record_queue.max(1));
        let inner = Arc::new(Inner {
            completions,
            ahead: Arc::new(Semaphore::new(self.config.max_claimed_ahead)),
            queued: Arc::new(Semaphore::new(self.config.max_in_flight.max(1))),
            waiting: Mutex::new(HashMap::new()),
            waiting_for_slot: Mutex::new(HashMap::new()),
            requests_over: Mutex::new(HashSet::new()),
            jobs_changed: Notify::new(),
            herd_waiting: AtomicUsize::new(0),
            jobs_changes: AtomicU64::new(0),
            secret_cache: Mutex::new(HashMap::new()),
            secret_reader: tokio::sync::Mutex::new(()),
            permits: Arc::new(Semaphore::new(self.config.max_in_flight.max(1))),
            database: self.database,
            clock: self.clock,
            config: self.config,
            deliverer: self.deliverer,
            wake: Notify::new(),
            webhook_wake: Notify::new(),
            mail_wakeup: self.mail_wakeup,
            in_flight: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        });
        let mut helpers = vec![
            tokio::spawn(lease_keeper(inner.clone())),
            tokio::spawn(rescuer(inner.clone(), stop.clone())),
            tokio::spawn(listen_for_wakeups(inner.clone(), stop.clone())),
            tokio::spawn(crate::webhooks::send_webhook_notifications(
                inner.clone(),
                stop.clone(),
            )),
            tokio::spawn(prune_history(inner.clone(), stop.clone())),
            tokio::spawn(record_completions(inner.clone(), completed)),
            tokio::spawn(revalidator(inner.clone(), stop.clone())),
        ];
        if let Some(external) = external_wake {
            helpers.push(tokio::spawn(forward_wakeups(
                inner.clone(),
                external,
                stop.clone(),
            )));
        }
        let main = tokio::spawn(run(inner.clone(), stop.clone()));
        EngineHandle {
            stop,
            main,
            helpers,
            inner,
        }
    }
}

/// Stops a running [`Engine`].
pub struct EngineHandle {
    stop: CancellationToken,
    main: JoinHandle<()>,
    helpers: Vec<JoinHandle<()>>,
    inner: Arc<Inner>,
}

impl EngineHandle {
    /// Makes the engine look for work now, and check the occurrences it
    /// claimed ahead against their jobs (call it after changing jobs).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
        self.inner.jobs_may_have_changed();
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// Stops claiming work, lets in-flight executions finish within the grace
    /// period, hands back the rest (as failed attempts followed by a retry), and
    /// waits for the engine's tasks to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.main.await {
            tracing::error!(%error, "engine task ended abnormally");
        }
        for helper in self.helpers {
            helper.abort();
        }
    }

    /// Stops at once without draining or handing back: what a killed process
    /// leaves behind (tests of lease rescue).
    pub fn abort(self) {
        self.main.abort();
        for helper in self.helpers {
            helper.abort();
        }
        if let Ok(in_flight) = self.inner.in_flight.lock() {
            for token in in_flight.values() {
                token.cancel();
            }
        }
    }
}

async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    tracing::info!(node_id = %inner.config.node_id, backend = ?inner.database.backend(), "engine started");
    while !stop.is_cancelled() {
        let more = match inner.pass().await {
            Ok(more) => more,
            Err(error) => {
                tracing::error!(%error, "engine pass failed");
                false
            }
        };
        if more {
            tokio::task::yield_now().await;
            continue;
        }
        let delay = inner.next_delay().await;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
    inner.drain().await;
    tracing::info!(node_id = %inner.config.node_id, "engine stopped");
}

impl Inner {
    /// One dispatch-and-start pass; true when there is more to do right away.
    async fn pass(self: &Arc<Self>) -> Result<bool> {
        let now = self.clock.now();
        let dispatched = self.dispatch_due(now).await?;
        let (started, limit) = self.start_runnable(self.clock.now()).await?;
        Ok(dispatched as u64 >= self.config.dispatch_batch || (started > 0 && started == limit))
    }

    async fn next_delay(&self) -> Duration {
        if self.permits.available_permits() == 0 {
            // A finishing execution wakes us.
            return self.config.max_idle;
        }
        let db = self.database.conn();
        let lookahead = chrono::Duration::from_std(self.config.lookahead).unwrap_or_default();
        let due = store::earliest_due_job(db)
            .await
            .ok()
            .flatten()
            .map(|(at, ahead)| if ahead { at - lookahead } else { at });
        let pending = store::earliest_pending_execution(db).await.ok().flatten();
        let earliest = match (due, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match earliest {
            None => self.config.max_idle,
            Some(at) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(2), self.config.max_idle),
        }
    }

    /// Claims due jobs and writes their occurrences, advancing `next_run_at`, in
    /// one transaction.
    async fn dispatch_due(self: &Arc<Self>, now: DateTime<Utc>) -> Result<usize> {
        let horizon = now + chrono::Duration::from_std(self.config.lookahead).unwrap_or_default();
        let tolerance = chrono::Duration::from_std(self.config.missed_run_tolerance)
            .unwrap_or(chrono::Duration::seconds(60));
        let changes_before = self.jobs_changes.load(Ordering::SeqCst);
        let transaction = self.database.begin_write().await?;
        let mut free = self.permits.available_permits();
        let mut queue_free = self.queued.available_permits();
        let mut ahead_free = self.ahead.available_permits();
        let window = store::DueWindow {
            after: None,
            now,
            horizon,
        };
        let jobs = self
            .lock_dispatchable(
                &transaction,
                window,
                free + queue_free,
                ahead_free,
                tolerance / 2,
            )
            .await?;
        // Whether a run is still in progress matters only to the other policies.
        let guarded: Vec<Uuid> = jobs
            .iter()
            .filter(|job| job.concurrency != "allow")
            .map(|job| job.id)
            .collect();
        let busy = store::jobs_with_unfinished_executions(&transaction, &guarded).await?;
        let mut to_cancel = Vec::new();
        let mut skipped = 0u64;
        // Occurrences due now go straight to running on this node while it has
        // free slots, or room in its short queue for the next free slot: no
        // pending row, and no claim round before they start. Those due within
        // the look-ahead are claimed too, and start on time.
        let mut start_now = Vec::new();
        let mut occurrences = Vec::with_capacity(jobs.len());
        let mut next_runs = Vec::with_capacity(jobs.len());
        let mut completed = Vec::new();
        for job in &jobs {
            let Some(due) = job.next_run_at else { continue };
            let schedule = match schedule_of(job) {
                Ok(schedule) => schedule,
                Err(reason) => {
                    tracing::error!(job_id = %job.id, %reason, "stored schedule is unusable; job stopped");
                    store::set_next_run(&transaction, job.id, None).await?;
                    continue;
                }
            };
            let has_unfinished = busy.contains(&job.id);
            let plan = plan_occurrence(job, &schedule, due, now, tolerance, has_unfinished);
            if plan.replace_running {
                to_cancel.extend(
                    store::cancel_unfinished(
                        &transaction,
                        job.id,
                        now,
                        "canceled: replaced by a newer occurrence",
                    )
                    .await?,
                );
            }
            if plan.execution.status == "skipped" {
                skipped += 1;
            }
            let pending = plan.execution.status == "pending";
            if pending && plan.execution.run_after <= now && free > 0 {
                free -= 1;
                start_now.push(plan.execution);
            } else if pending && plan.execution.run_after <= now && queue_free > 0 {
                queue_free -= 1;
                start_now.push(plan.execution);
            } else if pending && plan.execution.run_after > now && ahead_free > 0 {
                ahead_free -= 1;
                start_now.push(plan.execution);
            } else {
                occurrences.push(plan.execution);
            }
            next_runs.push((job.id, plan.next_run_at));
            if plan.completes_job {
                completed.push(job.id);
            }
        }
        // Written in bulk: a herd of jobs due at one instant costs a few statements.
        store::insert_executions(&transaction, occurrences, now).await?;
        let lease = self.lease_from(now);
        let started =
            store::insert_running_executions(&transaction, start_now, &lease, now).await?;
        let dispatched = jobs.len();
        // A dispatch plans one occurrence per job: each job moves to its claim.
        let mut jobs_by_id: HashMap<Uuid, punctual_persistence::entities::job::Model> =
            jobs.into_iter().map(|job| (job.id, job)).collect();
        let claimed: Vec<ClaimedExecution> = started
            .into_iter()
            .filter_map(|execution| {
                let job = jobs_by_id.remove(&execution.job_id)?;
                Some(ClaimedExecution { execution, job })
            })
            .collect();
        let claimed = self.apply_quota(&transaction, claimed, now).await?;
        store::set_next_runs(&transaction, next_runs).await?;
        store::complete_jobs(&transaction, &completed, now).await?;
        transaction.commit().await?;
        self.spawn_claimed(claimed, now);
        // A change committed while this dispatch read its jobs (PostgreSQL reads
        // do not wait for writes) was checked before these claims were held:
        // check again now that they are.
        if self.jobs_changes.load(Ordering::SeqCst) != changes_before {
            self.jobs_changed.notify_one();
        }
        if dispatched > 0 {
            metrics::histogram!("punctual_dispatch_batch_size").record(dispatched as f64);
            metrics::counter!("punctual_occurrences_dispatched_total").increment(dispatched as u64);
            metrics::counter!("punctual_executions_total", "status" => "skipped")
                .increment(skipped);
        }
        if let Ok(in_flight) = self.in_flight.lock() {
            for id in to_cancel {
                if let Some(token) = in_flight.get(&id) {
                    token.cancel();
                }
            }
        }
        Ok(dispatched)
    }

    /// Locks the jobs a dispatch takes at `now`: a whole batch, those due
    /// within the look-ahead included, while this node can start `room` of those
    /// due or more. With less room (saturated), only as many due as it can
    /// start: the rest wait in `jobs`, which costs nothing, instead of becoming
    /// pending rows that are claimed and written again later. Jobs late by
    /// `hold` or more are taken anyway, as pending rows, so that a busy node
    /// never lets an occurrence grow old enough to count as missed; those due
    /// within the look-ahead are taken up to `ahead` (they wait for their time).
    async fn lock_dispatchable(
        &self,
        db: &impl punctual_persistence::sea_orm::ConnectionTrait,
        window: store::DueWindow,
        room: usize,
        ahead: usize,
        hold: chrono::Duration,
    ) -> Result<Vec<punctual_persistence::entities::job::Model>> {
        let batch = self.config.dispatch_batch;
        if room as u64 >= batch {
            return Ok(store::lock_jobs_due_in(db, window, batch, &[]).await?);
        }
        let now = window.now;
        let due_now = store::DueWindow {
            horizon: now,
            ..window
        };
        let mut jobs = if room > 0 {
            store::lock_jobs_due_in(db, due_now, room as u64, &[]).await?
        } else {
            Vec::new()
        };
        let taken: Vec<Uuid> = jobs.iter().map(|job| job.id).collect();
        let overdue = store::DueWindow {
            now: now - hold,
            horizon: now - hold,
            ..window
        };
        jobs.extend(store::lock_jobs_due_in(db, overdue, batch, &taken).await?);
        if ahead > 0 && window.horizon > now {
            let later = store::DueWindow {
                after: Some(now),
                ..window
            };
            let limit = batch.min(ahead as u64);
            jobs.extend(store::lock_jobs_due_in(db, later, limit, &[]).await?);
        }
        Ok(jobs)
    }

    /// Claims runnable executions for the free slots and starts them.
    async fn start_runnable(self: &Arc<Self>, now: DateTime<Utc>) -> Result<(usize, usize)> {
        let free = self.permits.available_permits();
        if free == 0 {
            return Ok((0, 0));
        }
        let limit = free.min(self.config.dispatch_batch as usize);
        let lease = self.lease_from(now);
        let transaction = self.database.begin_write().await?;
        let claimed = store::claim_runnable_executions(
            &transaction,
            now,
            &self.config.node_id,
            lease.expires_at,
            limit as u64,
        )
        .await?;
        let claimed = self.apply_quota(&transaction, claimed, now).await?;
        transaction.commit().await?;
        let started = claimed.len();
        self.spawn_claimed(claimed, now);
        Ok((started, limit))
    }

    /// This node's lease on an execution starting at `now`.
    fn lease_from(&self, now: DateTime<Utc>) -> store::Lease {
        store::Lease {
            node_id: self.config.node_id.clone(),
            started_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.config.lease)
                    .unwrap_or(chrono::Duration::seconds(30)),
        }
    }

    /// Runs executions claimed by this node, each in a slot of the pool; one
    /// due later waits for its time, then for a slot.
    /// `counted_now`: the `now` [`Self::apply_quota`] counted them at.
    fn spawn_claimed(self: &Arc<Self>, claimed: Vec<ClaimedExecution>, counted_now: DateTime<Utc>) {
        let now = self.clock.now();
        for claim in claimed {
            let token = CancellationToken::new();
            if let Ok(mut in_flight) = self.in_flight.lock() {
                in_flight.insert(claim.execution.id, token.clone());
            }
            metrics::gauge!("punctual_executions_in_flight").increment(1.0);
            let waiting_claim = WaitingClaim {
                job_id: claim.job.id,
                job_updated_at: claim.job.updated_at,
                scheduled_for: claim.execution.scheduled_for,
                organization_id: claim.execution.organization_id,
                charged_at: counted_at(&claim.execution, counted_now),
            };
            let slot = if claim.execution.run_after > now {
                if let Ok(mut waiting) = self.waiting.lock() {
                    waiting.insert(claim.execution.id, waiting_claim);
                }
                Slot::Ahead(self.ahead.clone().try_acquire_owned().ok())
            } else {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => Slot::Running(permit),
                    // Queued for the next free slot.
                    Err(_) => {
                        if let Ok(mut waiting) = self.waiting_for_slot.lock() {
                            waiting.insert(claim.execution.id, waiting_claim);
                        }
                        Slot::Ahead(self.queued.clone().try_acquire_owned().ok())
                    }
                }
            };
            self.tasks
                .spawn(self.clone().run_execution(claim, token, slot));
        }
    }

    /// Gives up the claims made ahead whose job changed since. One goes back to
    /// pending (claimed again when due, with the job as it is then; if its
    /// organization is suspended, when it is unsuspended) while its occurrence
    /// is still one of the job's schedule; it is deleted when the job was
    /// paused or deleted, or rescheduled away from it (a new time, or a new
    /// cron that skips it).
    /// Only the claims due by `until` are looked at, when given.
    async fn revalidate_ahead(&self, until: Option<DateTime<Utc>>) -> Result<usize> {
        let snapshot: Vec<(Uuid, WaitingClaim)> = match self.waiting.lock() {
            Ok(waiting) => waiting
                .iter()
                .filter(|(_, claim)| until.is_none_or(|until| claim.scheduled_for <= until))
                .map(|(id, claim)| (*id, *claim))
                .collect(),
            Err(_) => return Ok(0),
        };
        if snapshot.is_empty() {
            return Ok(0);
        }
        let unchanged = |version: Option<&store::JobVersion>, claim: &WaitingClaim| {
            version
                .is_some_and(|v| v.updated_at == claim.job_updated_at && v.enabled && !v.suspended)
        };
        // A cheap look first: most wake-ups change none of the jobs claimed ahead.
        let versions = versions_by_job(
            store::job_versions(self.database.conn(), &job_ids_of(&snapshot)).await?,
        );
        let changed: Vec<(Uuid, WaitingClaim)> = snapshot
            .into_iter()
            .filter(|(_, claim)| !unchanged(versions.get(&claim.job_id), claim))
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        // Judged again under the jobs' locks, in the transaction that gives the
        // claims up: a job paused and resumed (and dispatched again, which the
        // claim's row turned away) in between must keep its occurrence.
        let job_ids = job_ids_of(&changed);
        let transaction = self.database.begin_write().await?;
        // Executions before jobs, the order every writer takes them in (a job's
        // delete among them): the other would deadlock with it.
        let claim_ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
        store::held_claims(&transaction, &self.config.node_id, &claim_ids).await?;
        let jobs = jobs_by_id(store::lock_jobs(&transaction, &job_ids).await?);
        let versions = versions_by_job(store::job_versions(&transaction, &job_ids).await?);
        let mut to_pending = Vec::new();
        let mut to_delete = Vec::new();
        let mut charges = Vec::new();
        {
            let Ok(mut waiting) = self.waiting.lock() else {
                return Ok(0);
            };
            let in_flight = self.in_flight.lock().ok();
            for (id, claim) in changed {
                let version = versions.get(&claim.job_id);
                if unchanged(version, &claim) {
                    continue;
                }
                // A suspended organization's claim waits as its pending runs do.
                let verdict = match jobs.get(&claim.job_id) {
                    Some(job) if job.enabled && still_an_occurrence(job, claim.scheduled_for) => {
                        &mut to_pending
                    }
                    _ => &mut to_delete,
                };
                // Still waiting (not started): from now on it never will here.
                if waiting.remove(&id).is_some() {
                    if let Some(token) = in_flight.as_ref().and_then(|m| m.get(&id)) {
                        token.cancel();
                    }
                    verdict.push(id);
                    charges.push(claim.quota_charge());
                }
            }
        }
        if to_pending.is_empty() && to_delete.is_empty() {
            return Ok(0);
        }
        store::release_claims(&transaction, &self.config.node_id, &to_pending, &to_delete).await?;
        // Whatever became of the row meanwhile (its job deleted with it, or a
        // rescuer's), this claim never ran here: what it was counted goes back.
        self.refund_quota(&transaction, &charges).await?;
        transaction.commit().await?;
        if !to_pending.is_empty() {
            self.wake.notify_one();
        }
        Ok(to_pending.len() + to_delete.len())
    }

    /// Gives up the claims made ahead that will not start here (the node is
    /// stopping). One still ahead of its time, of a job unchanged since, is
    /// undone: its row goes and the job is due at it again, so that whoever
    /// dispatches it applies the missed-run policy if that is late. One whose
    /// time has come (it waits for a slot) goes back to pending, as queued runs
    /// do; one of a changed job is judged as [`Self::revalidate_ahead`] does.
    async fn undo_claims_ahead(&self, claims: &[(Uuid, WaitingClaim)]) -> Result<()> {
        let now = self.clock.now();
        let ids: Vec<Uuid> = claims.iter().map(|(id, _)| *id).collect();
        let transaction = self.database.begin_write().await?;
        // Executions, then jobs in id order: as every other writer, and as
        // another node stopping at the same time.
        let held: HashSet<Uuid> = store::held_claims(&transaction, &self.config.node_id, &ids)
            .await?
            .into_iter()
            .collect();
        let jobs = jobs_by_id(store::lock_jobs(&transaction, &job_ids_of(claims)).await?);
        let mut to_pending = Vec::new();
        let mut to_delete = Vec::new();
        // The earliest undone occurrence of each job.
        let mut rewind: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
        for (id, claim) in claims.iter().filter(|(id, _)| held.contains(id)) {
            let job = jobs.get(&claim.job_id).filter(|job| job.enabled);
            match job {
                Some(job) if still_an_occurrence(job, claim.scheduled_for) => {
                    let unchanged = job.updated_at == claim.job_updated_at;
                    if claim.scheduled_for > now && unchanged {
                        to_delete.push(*id);
                        let at = rewind.entry(claim.job_id).or_insert(claim.scheduled_for);
                        *at = (*at).min(claim.scheduled_for);
                    } else {
                        to_pending.push(*id);
                    }
                }
                _ => to_delete.push(*id),
            }
        }
        store::release_claims(&transaction, &self.config.node_id, &to_pending, &to_delete).await?;
        store::rewind_next_runs(&transaction, &rewind).await?;
        // Whatever became of a row meanwhile, the claim never ran here.
        let charges: Vec<_> = claims
            .iter()
            .map(|(_, claim)| claim.quota_charge())
            .collect();
        self.refund_quota(&transaction, &charges).await?;
        transaction.commit().await?;
        if !rewind.is_empty() || !to_pending.is_empty() {
            self.notify_other_nodes().await;
        }
        Ok(())
    }

    /// Counts claimed executions against their organizations' monthly quotas;
    /// those past it are recorded skipped (`quota_exceeded`) and the organization
    /// is told once per period.
    async fn apply_quota(
        &self,
        db: &impl punctual_persistence::sea_orm::ConnectionTrait,
        claimed: Vec<ClaimedExecution>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedExecution>> {
        if claimed.is_empty() || self.config.plans.is_empty() {
            return Ok(claimed);
        }
        // Counted in the month an execution starts: one claimed ahead of the
        // first instant of a month belongs to the new month.
        let period_of = |claim: &ClaimedExecution| {
            UsagePeriod::containing(counted_at(&claim.execution, now)).start
        };
        let wanted = count_by_month(
            claimed
                .iter()
                .map(|claim| (claim.execution.organization_id, period_of(claim))),
        );
        let limits = self.limits_of_organizations(db, &wanted).await?;
        let mut granted: HashMap<(Uuid, DateTime<Utc>), u64> = HashMap::new();
        for ((org, period), wanted) in wanted {
            // An organization deleted meanwhile is granted nothing.
            let Some(limits) = limits.get(&org) else {
                continue;
            };
            let allowed = match limits {
                Some(limits) => {
                    let key = UsagePeriod::containing(period).key();
                    quota::consume_executions(db, org, &key, wanted, limits.executions_per_month)
                        .await?
                }
                None => wanted,
            };
            granted.insert((org, period), allowed);
        }
        let mut runnable = Vec::with_capacity(claimed.len());
        let mut over: Vec<Uuid> = Vec::new();
        let mut over_orgs: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
        let mut once_jobs_ended = Vec::new();
        for claim in claimed {
            let period = period_of(&claim);
            let left = granted
                .entry((claim.execution.organization_id, period))
                .or_insert(0);
            if *left > 0 {
                *left -= 1;
                runnable.push(claim);
            } else {
                over.push(claim.execution.id);
                over_orgs.push((claim.execution.organization_id, period));
                if finishes_its_job(&claim) {
                    once_jobs_ended.push((claim.job.id, claim.execution.scheduled_for));
                }
            }
        }
        // A once-job whose occurrence is skipped is complete, as after a run.
        store::complete_once_jobs(db, &once_jobs_ended, now).await?;
        if !over.is_empty() {
            store::skip_claimed(
                db,
                &over,
                now,
                "quota_exceeded: the organization used its monthly executions",
            )
            .await?;
            metrics::counter!("punctual_executions_total", "status" => "skipped")
                .increment(over.len() as u64);
            over_orgs.sort();
            over_orgs.dedup();
            for (org, period) in over_orgs {
                let key = UsagePeriod::containing(period).key();
                if quota::mark_quota_notified(db, org, &key, now).await? {
                    let detail = "Your organization used all the executions its plan allows this month; further runs are skipped until the next period or a plan change.";
                    notify(
                        db,
                        org,
                        None,
                        NotificationKind::QuotaExceeded,
                        detail,
                        self.coalesce(),
                        now,
                    )
                    .await?;
                    self.queued_notifications();
                }
            }
        }
        Ok(runnable)
    }

    /// Hands back to the monthly quotas what [`Self::apply_quota`] took for
    /// claims given up before they started (`charges`: organization, and the
    /// instant whose month it was counted in), so that an occurrence given
    /// back and claimed again is counted once, and one that never runs (its
    /// job paused or deleted) not at all.
    async fn refund_quota(
        &self,
        db: &impl punctual_persistence::sea_orm::ConnectionTrait,
        charges: &[(Uuid, DateTime<Utc>)],
    ) -> Result<()> {
        if charges.is_empty() || self.config.plans.is_empty() {
            return Ok(());
        }
        let counts = count_by_month(
            charges
                .iter()
                .map(|(org, charged_at)| (*org, UsagePeriod::containing(*charged_at).start)),
        );
        let limits = self.limits_of_organizations(db, &counts).await?;
        for ((org, period), count) in counts {
            // Counted only where a plan applied when it was claimed.
            if matches!(limits.get(&org), Some(Some(_))) {
                let key = UsagePeriod::containing(period).key();
                quota::refund_executions(db, org, &key, count).await?;
            }
        }
        Ok(())
    }

    /// The plan limits that apply to each organization of `counts` (`None`:
    /// no plan applies, nothing is counted); one deleted meanwhile is absent.
    async fn limits_of_organizations(
        &self,
        db: &impl punctual_persistence::sea_orm::ConnectionTrait,
        counts: &BTreeMap<(Uuid, DateTime<Utc>), u64>,
    ) -> Result<HashMap<Uuid, Option<&PlanLimits>>> {
        let mut orgs: Vec<Uuid> = counts.keys().map(|(org, _)| *org).collect();
        orgs.dedup();
        Ok(store::organization_plans(db, &orgs)
            .await?
            .into_iter()
            .map(|(org, plan)| (org, punctual_domain::limits_for(&self.config.plans, &plan)))
            .collect())
    }

    fn coalesce(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.notification_coalesce)
            .unwrap_or(chrono::Duration::minutes(10))
    }

    fn queued_notifications(&self) {
        if let Some(mail) = &self.mail_wakeup {
            mail.notify_one();
        }
        self.webhook_wake.notify_one();
    }

    async fn run_execution(
        self: Arc<Self>,
        claim: ClaimedExecution,
        token: CancellationToken,
        slot: Slot,
    ) {
        let execution_id = claim.execution.id;
        let execution = &claim.execution;
        let span = tracing::info_span!(
            "execution",
            execution_id = %execution.id,
            job_id = %execution.job_id,
            org_id = %execution.organization_id,
            attempt = execution.attempt,
        );
        let permit = match slot {
            Slot::Running(permit) => Some(permit),
            Slot::Ahead(room) => {
                let permit = self.wait_for_start(&claim, &token).await;
                drop(room);
                permit
            }
        };
        match permit {
            Some(permit) => self.execute(claim, &token, permit).instrument(span).await,
            None => {
                // Given up before it started (a cancel, a lost lease): nothing of
                // it stays waiting. One that started left the maps as it did.
                if let Ok(mut waiting) = self.waiting.lock() {
                    waiting.remove(&execution_id);
                }
                if let Ok(mut waiting_for_slot) = self.waiting_for_slot.lock() {
                    waiting_for_slot.remove(&execution_id);
                }
                tracing::info!(%execution_id, "execution given up before its start")
            }
        }
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&execution_id);
            if let Ok(mut requests_over) = self.requests_over.lock() {
                requests_over.remove(&execution_id);
            }
        }
        metrics::gauge!("punctual_executions_in_flight").decrement(1.0);
        self.wake.notify_one();
    }

    /// An execution claimed ahead: waits for its due time, then for a slot.
    /// None when its claim was given up meanwhile.
    async fn wait_for_start(
        &self,
        claim: &ClaimedExecution,
        token: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        let run_after = claim.execution.run_after;
        let ready = async {
            let mut claimed_ahead = false;
            // Never early: a timer may round, the clock is what counts.
            while let Ok(remaining) = (run_after - self.clock.now()).to_std() {
                if remaining.is_zero() {
                    break;
                }
                claimed_ahead = true;
                tokio::time::sleep(remaining).await;
            }
            let _herd = claimed_ahead.then(|| HerdMember::join(&self.herd_waiting));
            self.permits.clone().acquire_owned().await.ok()
        };
        let permit = tokio::select! {
            permit = ready => permit?,
            _ = token.cancelled() => return None,
        };
        // From here it starts, and can no longer be given up by revalidation
        // or by the end of the shutdown grace.
        let mut waiting = self.waiting.lock().ok()?;
        if token.is_cancelled() {
            return None;
        }
        waiting.remove(&claim.execution.id);
        if let Ok(mut waiting_for_slot) = self.waiting_for_slot.lock() {
            waiting_for_slot.remove(&claim.execution.id);
        }
        Some(permit)
    }

    /// Performs the request and hands its result to the recorder.
    async fn execute(
        &self,
        claim: ClaimedExecution,
        token: &CancellationToken,
        permit: OwnedSemaphorePermit,
    ) {
        let execution = &claim.execution;
        let started = self.clock.now();
        let result = match self.signing_keys(execution.organization_id, started).await {
            Ok(keys) => {
                let delivery = Delivery {
                    message_id: crate::signing::occurrence_message_id(
                        execution.job_id,
                        execution.scheduled_for,
                    ),
                    url: &claim.job.url,
                    method: &claim.job.method,
                    headers_json: &claim.job.headers,
                    body: claim.job.body.as_deref(),
                    timeout: Duration::from_millis(
                        u64::try_from(claim.job.timeout_ms).unwrap_or(30_000),
                    ),
                    signing_keys: &keys,
                    now: started,
                };
                tokio::select! {
                    result = self.deliverer.deliver(&delivery) => result,
                    _ = token.cancelled() => {
                        tracing::info!("execution stopped: canceled, taken over, or shutting down");
                        return;
                    }
                }
            }
            // Receivers verify signatures: an unsigned request would be refused at
            // best, so the attempt fails here and is retried as any other.
            Err(error) => {
                tracing::warn!(%error, "signing secrets could not be read; request not sent");
                let reason = match error {
                    EngineError::NoSigningSecret => "the organization has no signing secret",
                    _ => "signing secrets could not be read",
                };
                DeliveryResult::not_sent(
                    format!("{reason}; the request was not sent"),
                    Duration::ZERO,
                )
            }
        };
        if let Ok(mut requests_over) = self.requests_over.lock() {
            requests_over.insert(execution.id);
        }
        let (done, recorded) = oneshot::channel();
        let completion = Completion {
            claim,
            result,
            started,
            done,
        };
        if self.completions.send(completion).await.is_ok() {
            // The request is over: its slot goes to the next one while the outcome
            // waits for the recorder. The queue is bounded, so a database slower
            // than the targets still holds slots back.
            drop(permit);
            let _ = recorded.await;
        }
    }

    /// The organization's signing secrets in force, keyed, cached briefly.
    /// A failed read is not cached: the next attempt reads again. Job requests
    /// and notification webhooks both sign through here.
    pub(crate) async fn signing_keys(
        &self,
        org: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Arc<SigningKeys>> {
        let cached = || {
            let cache = self.secret_cache.lock().ok()?;
            let (at, keys) = cache.get(&org)?;
            (at.elapsed() < SECRET_CACHE_TTL).then(|| keys.clone())
        };
        if let Some(keys) = cached() {
            return Ok(keys);
        }
        let _reading = self.secret_reader.lock().await;
        if let Some(keys) = cached() {
            return Ok(keys);
        }
        let secrets = store::signing_secrets(self.database.conn(), org, now).await?;
        if secrets.is_empty() {
            return Err(EngineError::NoSigningSecret);
        }
        let keys = Arc::new(SigningKeys::new(&secrets));
        if let Ok(mut cache) = self.secret_cache.lock() {
            cache.insert(org, (std::time::Instant::now(), keys.clone()));
        }
        Ok(keys)
    }

    /// Asks the revalidator to check the claims made ahead against their jobs.
    fn jobs_may_have_changed(&self) {
        self.jobs_changes.fetch_add(1, Ordering::SeqCst);
        self.jobs_changed.notify_one();
    }

    /// After a commit that disabled jobs: claims made ahead of them are given
    /// up, here (the revalidator) and on other nodes (a wake-up), as after a
    /// pause through the API.
    async fn tell_of_disabled_jobs(&self) {
        self.jobs_may_have_changed();
        self.notify_other_nodes().await;
    }

    /// Wakes the other nodes (PostgreSQL); a failure only delays them to their
    /// next timer.
    async fn notify_other_nodes(&self) {
        if let Err(error) = wakeup::notify_all(&self.database).await {
            tracing::warn!(%error, "could not notify other nodes");
        }
    }

    /// Records a batch of finished attempts in one transaction (group commit):
    /// one fsync and a few set-based statements for many outcomes. An attempt
    /// canceled or taken over meanwhile is not recorded (nothing is written).
    async fn record_batch(&self, batch: &[Completion]) -> Result<()> {
        let finished = self.clock.now();
        let outcomes: Vec<(Uuid, AttemptOutcome)> = batch
            .iter()
            .map(|completion| {
                (
                    completion.claim.execution.id,
                    outcome_of(completion, finished),
                )
            })
            .collect();
        let transaction = self.database.begin_write().await?;
        let recorded: std::collections::HashSet<Uuid> =
            store::record_outcomes(&transaction, &self.config.node_id, &outcomes)
                .await?
                .into_iter()
                .collect();
        let is_recorded = |c: &&Completion| recorded.contains(&c.claim.execution.id);
        let (succeeded, failed): (Vec<&Completion>, Vec<&Completion>) = batch
            .iter()
            .filter(is_recorded)
            .partition(|c| c.result.status == DeliveryStatus::Success);

        let mut succeeded_jobs: Vec<Uuid> =
            succeeded.iter().map(|c| c.claim.execution.job_id).collect();
        succeeded_jobs.sort();
        succeeded_jobs.dedup();
        for job_id in store::reset_failure_streaks(&transaction, &succeeded_jobs).await? {
            let Some(completion) = succeeded
                .iter()
                .find(|c| c.claim.execution.job_id == job_id)
            else {
                continue;
            };
            let detail = "The job succeeded again after failing.";
            notify(
                &transaction,
                completion.claim.execution.organization_id,
                Some(&completion.claim.job),
                NotificationKind::Recovery,
                detail,
                self.coalesce(),
                finished,
            )
            .await?;
            self.queued_notifications();
        }
        let once_jobs: Vec<(Uuid, DateTime<Utc>)> = succeeded
            .iter()
            .filter(|c| finishes_its_job(&c.claim))
            .map(|c| (c.claim.execution.job_id, c.claim.execution.scheduled_for))
            .collect();
        store::complete_once_jobs(&transaction, &once_jobs, finished).await?;
        let mut disabled = false;
        for completion in &failed {
            disabled |= self
                .after_failed_attempt(
                    &transaction,
                    &completion.claim,
                    finished,
                    completion.result.retry_after,
                    false,
                )
                .await?;
        }
        transaction.commit().await?;
        if disabled {
            self.tell_of_disabled_jobs().await;
        }

        for (completion, (_, outcome)) in batch.iter().zip(&outcomes) {
            let execution = &completion.claim.execution;
            if !recorded.contains(&execution.id) {
                tracing::info!(execution_id = %execution.id, "execution was canceled or taken over meanwhile; outcome dropped");
                continue;
            }
            tracing::info!(execution_id = %execution.id, job_id = %execution.job_id, org_id = %execution.organization_id, attempt = execution.attempt, status = outcome.status, status_code = ?outcome.status_code, duration_ms = outcome.duration_ms, lag_ms = outcome.lag_ms, "execution finished");
            metrics::counter!("punctual_executions_total", "status" => outcome.status).increment(1);
            metrics::histogram!("punctual_execution_lag_seconds")
                .record(outcome.lag_ms as f64 / 1000.0);
            metrics::histogram!("punctual_execution_duration_seconds")
                .record(completion.result.duration.as_secs_f64());
        }
        Ok(())
    }

    /// A failed attempt: the next attempt after a backoff, or the end of the
    /// occurrence as a failure. `not_the_targets_fault` (our own shutdown cut the
    /// request short) always gets another attempt, spent or not. Returns whether
    /// the job was disabled (its failure streak): once the caller's transaction
    /// commits, [`Self::tell_of_disabled_jobs`].
    async fn after_failed_attempt(
        &self,
        db: &impl punctual_persistence::sea_orm::ConnectionTrait,
        claim: &ClaimedExecution,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
        not_the_targets_fault: bool,
    ) -> Result<bool> {
        let job = &claim.job;
        let execution = &claim.execution;
        let policy = RetryPolicy::new(
            u32::try_from(job.retry_max_attempts).unwrap_or(1),
            u64::try_from(job.retry_min_backoff_ms).unwrap_or(1000),
            u64::try_from(job.retry_max_backoff_ms).unwrap_or(1000),
        )
        .unwrap_or_default();
        let attempts_made = u32::try_from(execution.attempt).unwrap_or(u32::MAX);
        if not_the_targets_fault || policy.allows_another_attempt(attempts_made) {
            let max = Duration::from_millis(policy.max_backoff_ms());
            let delay = match retry_after {
                Some(asked) => asked.min(max),
                None => policy.backoff(attempts_made, rand::random::<f64>()),
            };
            let run_after =
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            store::insert_execution(
                db,
                NewExecution {
                    job_id: execution.job_id,
                    organization_id: execution.organization_id,
                    scheduled_for: execution.scheduled_for,
                    attempt: execution.attempt.saturating_add(1),
                    trigger: "retry",
                    status: "pending",
                    run_after,
                    error: None,
                },
                now,
            )
            .await?;
            return Ok(false);
        }
        let disabled = store::record_occurrence_failure(
            db,
            execution.job_id,
            self.config.auto_disable_after,
            now,
        )
        .await?;
        let detail = format!(
            "The occurrence due at {} failed after {} attempt(s).",
            execution.scheduled_for.to_rfc3339(),
            execution.attempt
        );
        let coalesce = self.coalesce();
        notify(
            db,
            execution.organization_id,
            Some(job),
            NotificationKind::Failure,
            &detail,
            coalesce,
            now,
        )
        .await?;
        if disabled {
            tracing::warn!(job_id = %execution.job_id, "job auto-disabled after consecutive failures");
            // In the audit trail beside the pauses people make, in the same
            // transaction as the change it records.
            audit::record(
                db,
                NewAuditEvent {
                    organization_id: Some(execution.organization_id),
                    actor_type: audit::actor::SYSTEM.to_owned(),
                    action: "job.auto_disabled".to_owned(),
                    target_type: Some("job".to_owned()),
                    target_id: Some(execution.job_id.to_string()),
                    metadata: serde_json::json!({
                        "consecutive_failed_occurrences": self.config.auto_disable_after,
                        "last_execution_id": execution.id,
                    }),
                    ..NewAuditEvent::default()
                },
                now,
            )
            .await?;
            let detail = format!(
                "The job was disabled after {} consecutive failed occurrences.",
                self.config.auto_disable_after
            );
            notify(
                db,
                execution.organization_id,
                Some(job),
                NotificationKind::AutoDisabled,
                &detail,
                coalesce,
                now,
            )
            .await?;
        }
        self.queued_notifications();
        if finishes_its_job(claim) {
            store::complete_once_jobs(db, &[(execution.job_id, execution.scheduled_for)], now)
                .await?;
        }
        Ok(disabled)
    }

    /// Shutdown: wait for in-flight executions within the grace period, then
    /// stop the rest and hand them back as failed attempts followed by a retry.
    async fn drain(&self) {
        self.tasks.close();
        // Claims made ahead that have not started are given up at once (see
        // `undo_claims_ahead`): any node, or this one after a restart, runs
        // them when due.
        let not_started: Vec<(Uuid, WaitingClaim)> =
            match (self.waiting.lock(), self.in_flight.lock()) {
                (Ok(mut waiting), Ok(in_flight)) => waiting
                    .drain()
                    .inspect(|(id, _)| {
                        if let Some(token) = in_flight.get(id) {
                            token.cancel();
                        }
                    })
                    .collect(),
                _ => Vec::new(),
            };
        if !not_started.is_empty() {
            if let Err(error) = self.undo_claims_ahead(&not_started).await {
                tracing::warn!(%error, "could not hand back the claims made ahead; their leases will expire");
            }
        }
        if tokio::time::timeout(self.config.shutdown_grace, self.tasks.wait())
            .await
            .is_ok()
        {
            return;
        }
        // Due ones still waiting for a slot were never sent: they go back to
        // pending as they are, uncounted. Those whose request is over are left
        // to the recorder. The rest are being sent: each is a failed attempt,
        // followed by a retry.
        let (not_started, charges, ids) = match (
            self.waiting.lock(),
            self.waiting_for_slot.lock(),
            self.in_flight.lock(),
            self.requests_over.lock(),
        ) {
            (Ok(_waiting), Ok(mut waiting_for_slot), Ok(in_flight), Ok(requests_over)) => {
                let (not_started, charges): (Vec<Uuid>, Vec<_>) = waiting_for_slot
                    .drain()
                    .map(|(id, claim)| (id, claim.quota_charge()))
                    .unzip();
                let mut ids = Vec::new();
                for (id, token) in in_flight.iter() {
                    if requests_over.contains(id) {
                        continue;
                    }
                    token.cancel();
                    if !not_started.contains(id) {
                        ids.push(*id);
                    }
                }
                (not_started, charges, ids)
            }
            _ => (Vec::new(), Vec::new(), Vec::new()),
        };
        let now = self.clock.now();
        let handed_back = async {
            let transaction = self.database.begin_write().await?;
            store::release_claims(&transaction, &self.config.node_id, &not_started, &[]).await?;
            self.refund_quota(&transaction, &charges).await?;
            let interrupted = store::interrupt_node_executions(
                &transaction,
                &self.config.node_id,
                &ids,
                now,
                "interrupted: the node shut down before the request finished",
            )
            .await?;
            let mut disabled = false;
            for claim in &interrupted {
                disabled |= self
                    .after_failed_attempt(&transaction, claim, now, Some(Duration::ZERO), true)
                    .await?;
            }
            transaction.commit().await?;
            if disabled {
                self.tell_of_disabled_jobs().await;
            }
            Ok::<_, EngineError>(interrupted.len())
        }
        .await;
        match handed_back {
            Ok(count) => tracing::warn!(
                interrupted = count,
                not_started = not_started.len(),
                "handed back executions that outlived the shutdown grace"
            ),
            Err(error) => {
                tracing::error!(%error, "could not hand back executions; their leases will expire")
            }
        }
        self.tasks.wait().await;
    }
}

/// The distinct jobs of these claims, ordered (so every node locks them in the
/// same order).
fn job_ids_of(claims: &[(Uuid, WaitingClaim)]) -> Vec<Uuid> {
    let mut job_ids: Vec<Uuid> = claims.iter().map(|(_, claim)| claim.job_id).collect();
    job_ids.sort();
    job_ids.dedup();
    job_ids
}

fn versions_by_job(versions: Vec<store::JobVersion>) -> HashMap<Uuid, store::JobVersion> {
    versions.into_iter().map(|v| (v.id, v)).collect()
}

fn jobs_by_id(jobs: Vec<job::Model>) -> HashMap<Uuid, job::Model> {
    jobs.into_iter().map(|job| (job.id, job)).collect()
}

/// The instant whose month [`Inner::apply_quota`] counts a claim in: that of
/// its due time, or of its claim if it was overdue.
fn counted_at(
    execution: &punctual_persistence::entities::execution::Model,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    execution.run_after.max(now)
}

/// Whether `at` is one of the job's occurrences as the job is scheduled now
/// (a job rescheduled away from a claimed occurrence must not run it).
fn still_an_occurrence(job: &job::Model, at: DateTime<Utc>) -> bool {
    crate::dispatch::schedule_of(job).is_ok_and(|schedule| {
        schedule.next_after(at - chrono::Duration::milliseconds(1)) == Some(at)
    })
}

/// Whether the end of this execution's occurrence is the end of its job: the
/// once-job's own occurrence, not a manual run of it (which shifts nothing, so
/// the job still runs at its time). Judged on the job as claimed; the
/// completion itself checks the job as it is then
/// (`store::complete_once_jobs`).
fn finishes_its_job(claim: &ClaimedExecution) -> bool {
    claim.job.schedule_kind == "once" && claim.job.run_at == Some(claim.execution.scheduled_for)
}

/// Executions counted by organization and month (the month's first instant),
/// ordered, so that each group's counter is written once and locked in the
/// same order by every node.
fn count_by_month(
    items: impl Iterator<Item = (Uuid, DateTime<Utc>)>,
) -> BTreeMap<(Uuid, DateTime<Utc>), u64> {
    let mut counts = BTreeMap::new();
    for key in items {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The row an attempt's result becomes.
fn outcome_of(completion: &Completion, finished: DateTime<Utc>) -> AttemptOutcome {
    let result = &completion.result;
    let status = match result.status {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Timeout => "timeout",
    };
    AttemptOutcome {
        status,
        started_at: completion.started,
        finished_at: finished,
        duration_ms: i64::try_from(result.duration.as_millis()).unwrap_or(i64::MAX),
        lag_ms: (completion.started - completion.claim.execution.run_after)
            .num_milliseconds()
            .max(0),
        status_code: result.status_code.map(i32::from),
        response_body: result.body.clone(),
        error: result.error.clone(),
    }
}

/// Records finished attempts in batches: whatever has queued up while the last
/// transaction committed goes into the next one.
async fn record_completions(inner: Arc<Inner>, mut completed: mpsc::Receiver<Completion>) {
    while let Some(first) = completed.recv().await {
        // A herd's requests start first while there is room in the queue.
        let deferred = std::time::Instant::now();
        while inner.herd_waiting.load(Ordering::Relaxed) > 0
            && inner.completions.capacity() > 0
            && deferred.elapsed() < HERD_RECORD_DEFERRAL
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match completed.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if let Err(error) = inner.record_batch(&batch).await {
            tracing::warn!(%error, size = batch.len(), "batch record failed; recording one by one");
            for completion in &batch {
                if let Err(error) = inner.record_batch(std::slice::from_ref(completion)).await {
                    tracing::error!(%error, execution_id = %completion.claim.execution.id, "could not record the execution; its lease will expire and it will be retried");
                }
            }
        }
        for completion in batch {
            let _ = completion.done.send(());
        }
    }
}

/// Renews this node's leases and stops executions that are no longer ours.
/// It runs until the handle aborts it, after the drain: the runs finishing
/// within the shutdown grace must keep their leases, or another node rescues
/// them and sends their requests again.
async fn lease_keeper(inner: Arc<Inner>) {
    let period = (inner.config.lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let local: Vec<Uuid> = inner
            .in_flight
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        if local.is_empty() {
            continue;
        }
        let until = inner.clock.now()
            + chrono::Duration::from_std(inner.config.lease)
                .unwrap_or(chrono::Duration::seconds(30));
        match store::renew_leases(inner.database.conn(), &inner.config.node_id, &local, until).await
        {
            Ok(gone) => {
                if let Ok(in_flight) = inner.in_flight.lock() {
                    for id in gone {
                        if let Some(token) = in_flight.get(&id) {
                            token.cancel();
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "lease renewal failed"),
        }
    }
}

/// Takes over executions whose node died (lease expired): the next attempt, or
/// "node lost" when attempts are spent. Also samples the queue depth.
async fn rescuer(inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(inner.config.rescue_interval) => {}
        }
        match inner.rescue_expired().await {
            Ok(0) => {}
            Ok(count) => {
                tracing::warn!(count, "rescued executions of a lost node");
                inner.wake.notify_one();
            }
            Err(error) => tracing::warn!(%error, "lease rescue failed"),
        }
        if let Ok(depth) = store::queue_depth(inner.database.conn(), inner.clock.now()).await {
            metrics::gauge!("punctual_queue_depth").set(depth as f64);
        }
    }
}

impl Inner {
    async fn rescue_expired(&self) -> Result<usize> {
        let now = self.clock.now();
        let transaction = self.database.begin_write().await?;
        let taken = store::take_over_expired_leases(
            &transaction,
            now,
            "node lost: the execution's lease expired",
            200,
        )
        .await?;
        let mut disabled = false;
        for claim in &taken {
            // A node's death is not the target's failure: a lost attempt is handed
            // on even when it was the last the job allows (it may never have been
            // sent), but only once past the limit, so that a run that kills every
            // node taking it cannot go round for ever.
            let handed_on = claim.execution.attempt <= claim.job.retry_max_attempts;
            disabled |= self
                .after_failed_attempt(&transaction, claim, now, Some(Duration::ZERO), handed_on)
                .await?;
        }
        transaction.commit().await?;
        if disabled {
            self.tell_of_disabled_jobs().await;
        }
        Ok(taken.len())
    }
}

/// Deletes executions older than their organization's plan retention, and
/// audit events older than the audit retention, a batch at a time.
async fn prune_history(inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(inner.config.retention_interval) => {}
        }
        match inner.prune_once(&stop).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned history past retention"),
            Err(error) => tracing::warn!(%error, "pruning failed"),
        }
    }
}

impl Inner {
    /// One pruning round over every plan's organizations, then the audit log.
    async fn prune_once(&self, stop: &CancellationToken) -> Result<u64> {
        use punctual_persistence::retention;
        let db = self.database.conn();
        let batch = self.config.retention_batch;
        let mut pruned = 0;
        let configured: Vec<&str> = self.config.plans.keys().map(String::as_str).collect();
        let mut groups = Vec::with_capacity(configured.len() + 1);
        for (plan, limits) in self.config.plans.iter() {
            groups.push((retention::organizations_on_plan(db, plan).await?, limits));
        }
        // Organizations on a plan no longer configured keep what the fallback
        // plan keeps, as they are limited by it.
        if let Some(fallback) = self.config.plans.get(punctual_domain::FALLBACK_PLAN) {
            groups.push((
                retention::organizations_on_other_plans(db, &configured).await?,
                fallback,
            ));
        }
        for (organizations, limits) in groups {
            let cutoff =
                self.clock.now() - chrono::Duration::days(i64::from(limits.retention_days));
            for org in organizations {
                pruned += in_batches(stop, batch, || {
                    retention::prune_executions(db, org, cutoff, batch)
                })
                .await?;
            }
        }
        // A retention too long to subtract keeps everything.
        if let Some(cutoff) = self
            .config
            .audit_retention
            .and_then(|keep| chrono::Duration::from_std(keep).ok())
            .and_then(|keep| self.clock.now().checked_sub_signed(keep))
        {
            pruned += in_batches(stop, batch, || {
                retention::prune_audit_events(db, cutoff, batch)
            })
            .await?;
        }
        Ok(pruned)
    }
}

/// Runs `delete` (`batch` rows at most each time) until a batch comes back
/// short or `stop` is cancelled, yielding between batches; returns how many
/// rows went.
async fn in_batches<E, F>(
    stop: &CancellationToken,
    batch: u64,
    mut delete: impl FnMut() -> F,
) -> std::result::Result<u64, E>
where
    F: std::future::Future<Output = std::result::Result<u64, E>>,
{
    let mut deleted = 0;
    while !stop.is_cancelled() {
        let count = delete().await?;
        deleted += count;
        if count < batch {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(deleted)
}

/// Checks the claims made ahead whenever jobs may have changed, and on a timer
/// for the changes no one told of (and after a check that failed). The timer
/// looks only at the claims due within two of its periods, so each is checked
/// once or twice before it starts, not every period of its look-ahead (a herd
/// of 20,000 claimed 2.5 s ahead would otherwise be read five times). Holding
/// no claim ahead, a check is a look at an empty map.
async fn revalidator(inner: Arc<Inner>, stop: CancellationToken) {
    let every = inner
        .config
        .recheck_ahead_every
        .max(Duration::from_millis(10));
    let window = TimeDelta::from_std(every * 2).unwrap_or(TimeDelta::MAX);
    let mut warned_at: Option<std::time::Instant> = None;
    loop {
        let until = tokio::select! {
            _ = stop.cancelled() => return,
            _ = inner.jobs_changed.notified() => None,
            _ = tokio::time::sleep(every) => Some(inner.clock.now() + window),
        };
        match inner.revalidate_ahead(until).await {
            Ok(count) => {
                warned_at = None;
                if count > 0 {
                    tracing::info!(count, "gave up claims made ahead of jobs changed since");
                }
            }
            // Once a minute while the database is away, not every period.
            Err(error) => {
                if warned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    warned_at = Some(std::time::Instant::now());
                    tracing::warn!(%error, "could not check the claims made ahead");
                }
            }
        }
    }
}

async fn forward_wakeups(inner: Arc<Inner>, external: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = external.notified() => {}
        }
        inner.wake.notify_one();
        inner.jobs_may_have_changed();
        inner.notify_other_nodes().await;
    }
}

async fn listen_for_wakeups(inner: Arc<Inner>, stop: CancellationToken) {
    let mut listener = match WakeupListener::subscribe(&inner.database).await {
        Ok(Some(listener)) => listener,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for wake-ups; relying on timers");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            received = listener.next() => match received {
                Ok(()) => {
                    inner.wake.notify_one();
                    inner.jobs_may_have_changed();
                }
                Err(error) => {
                    tracing::warn!(%error, "wake-up listener failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
