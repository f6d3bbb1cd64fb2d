//! How the engine writes new executions (`persistence::engine`): every column
//! it sets is stored as set (instants to the microsecond, as sqlx binds them),
//! and an occurrence inserted twice is stored once; a lease renewal extends
//! only the running rows its node still holds, however many, and names those
//! no longer running there; the
//! jobs it locks for dispatch read back exactly as stored; the recorder reaches
//! each running row through its primary key and stores outcomes as given.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use chrono::{DateTime, Duration, Utc};
use jobs_support::*;
use punctual_persistence::engine::{
    cancel_unfinished, insert_executions, insert_running_executions, lock_due_jobs,
    lock_running_statement, outcome_update_statement, record_locked_outcomes, record_outcomes,
    renew_leases, AttemptOutcome, Lease, NewExecution,
};
use punctual_persistence::entities::{execution, job};
use punctual_tests::engine::{EngineFixture, JobSpec};
use punctual_tests::spawn_app;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement};
use uuid::Uuid;

fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap()
}

fn truncated(mut row: execution::Model) -> execution::Model {
    row.scheduled_for = to_micros(row.scheduled_for);
    row.run_after = to_micros(row.run_after);
    row.started_at = row.started_at.map(to_micros);
    row.finished_at = row.finished_at.map(to_micros);
    row.lease_expires_at = row.lease_expires_at.map(to_micros);
    row.created_at = to_micros(row.created_at);
    row
}

#[tokio::test]
async fn new_executions_are_stored_as_built_and_an_occurrence_only_once() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let created = create_job(&app, &owner.access_token, &org, &job("rows")).await;
    let job_id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let organization_id: Uuid = org.id.parse().unwrap();
    let db = app.database.conn();
    // Nanoseconds that sqlx would truncate, not round.
    let now = DateTime::from_timestamp(1_800_000_000, 999_999_999).unwrap();
    let new =
        |scheduled_for: DateTime<Utc>, status: &'static str, error: Option<&str>| NewExecution {
            job_id,
            organization_id,
            scheduled_for,
            attempt: 2,
            trigger: "retry",
            status,
            run_after: scheduled_for + Duration::nanoseconds(1_500),
            error: error.map(str::to_owned),
        };
    let lease = Lease {
        node_id: "node \"a\" \\ ü".to_owned(),
        started_at: now + Duration::seconds(5),
        expires_at: now + Duration::seconds(65),
    };

    let running = insert_running_executions(db, vec![new(now, "pending", None)], &lease, now)
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    let skipped_at = now + Duration::minutes(1);
    insert_executions(
        db,
        vec![new(skipped_at, "skipped", Some("it's \"late\"\n"))],
        now,
    )
    .await
    .unwrap();

    let mut stored = execution::Entity::find()
        .filter(execution::Column::JobId.eq(job_id))
        .all(db)
        .await
        .unwrap();
    stored.sort_by_key(|row| row.scheduled_for);
    assert_eq!(stored.len(), 2);
    // SQLite keeps nanoseconds, PostgreSQL microseconds: truncated (never
    // rounded to the next microsecond) they are the instants the engine built.
    assert_eq!(truncated(stored[0].clone()), truncated(running[0].clone()));
    assert_eq!(stored[0].status, "running");
    assert_eq!(
        stored[0].started_at.map(to_micros),
        Some(to_micros(lease.started_at))
    );
    assert_eq!(stored[1].status, "skipped");
    assert_eq!(stored[1].trigger, "retry");
    assert_eq!(stored[1].error.as_deref(), Some("it's \"late\"\n"));
    assert_eq!(stored[1].finished_at.map(to_micros), Some(to_micros(now)));
    assert_eq!(
        to_micros(stored[1].run_after),
        to_micros(skipped_at + Duration::nanoseconds(1_500))
    );

    // The same occurrence again (same nanoseconds): nothing inserted, nothing to run.
    let again = insert_running_executions(db, vec![new(now, "pending", None)], &lease, now)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(
        execution::Entity::find()
            .filter(execution::Column::JobId.eq(job_id))
            .all(db)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_renewal_extends_the_leases_its_node_holds_and_names_the_runs_it_lost() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let organization_id: Uuid = org.id.parse().unwrap();
    let db = app.database.conn();
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut job_ids = Vec::new();
    for name in ["kept", "canceled", "other-node", "stranded"] {
        let created = create_job(&app, &owner.access_token, &org, &job(name)).await;
        job_ids.push(created["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let lease = |node: &str| Lease {
        node_id: node.to_owned(),
        started_at: now,
        expires_at: now + Duration::seconds(30),
    };
    let occurrence = |job_id: Uuid| NewExecution {
        job_id,
        organization_id,
        scheduled_for: now,
        attempt: 1,
        trigger: "schedule",
        status: "pending",
        run_after: now,
        error: None,
    };
    let ours = insert_running_executions(
        db,
        vec![
            occurrence(job_ids[0]),
            occurrence(job_ids[1]),
            occurrence(job_ids[3]),
        ],
        &lease("node-a"),
        now,
    )
    .await
    .unwrap();
    let theirs = insert_running_executions(db, vec![occurrence(job_ids[2])], &lease("node-b"), now)
        .await
        .unwrap();
    cancel_unfinished(db, job_ids[1], now, "canceled: replaced")
        .await
        .unwrap();
    let (kept, canceled) = (ours[0].id, ours[1].id);
    // Running on node-a by the table, but no longer held by it (its outcome could
    // not be written): its lease must run out so that a rescuer takes it.
    let stranded = ours[2].id;
    let deleted = Uuid::now_v7();

    let until = now + Duration::seconds(90);
    let gone = renew_leases(db, "node-a", &[kept, canceled, deleted], until)
        .await
        .unwrap();

    let mut gone_sorted = gone.clone();
    gone_sorted.sort();
    let mut expected = vec![canceled, deleted];
    expected.sort();
    assert_eq!(gone_sorted, expected);
    let lease_of = |id: Uuid| async move {
        execution::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .lease_expires_at
            .map(to_micros)
    };
    assert_eq!(lease_of(kept).await, Some(to_micros(until)));
    assert_eq!(
        lease_of(theirs[0].id).await,
        Some(to_micros(now + Duration::seconds(30)))
    );
    assert_eq!(lease_of(canceled).await, None);
    assert_eq!(
        lease_of(stranded).await,
        Some(to_micros(now + Duration::seconds(30)))
    );
}

/// A node can hold tens of thousands of runs (claims ahead, outcomes queued):
/// one renewal covers them all, more ids than SQLite binds in one statement.
#[tokio::test]
async fn a_renewal_covers_more_runs_than_one_statement_binds() {
    let fixture = EngineFixture::new().await;
    let db = fixture.database.conn();
    let now = Utc::now();
    let job_id = fixture
        .insert_job(JobSpec::once(now, "http://127.0.0.1:9/"))
        .await;
    let lease = Lease {
        node_id: "node-a".to_owned(),
        started_at: now,
        expires_at: now + Duration::seconds(30),
    };
    let held = insert_running_executions(
        db,
        vec![NewExecution {
            job_id,
            organization_id: fixture.organization_id,
            scheduled_for: now,
            attempt: 1,
            trigger: "schedule",
            status: "pending",
            run_after: now,
            error: None,
        }],
        &lease,
        now,
    )
    .await
    .unwrap();
    let mut local: Vec<Uuid> = (0..40_000).map(|_| Uuid::now_v7()).collect();
    local.push(held[0].id);
    let until = now + Duration::seconds(90);
    let gone = renew_leases(db, "node-a", &local, until).await.unwrap();
    assert_eq!(gone.len(), 40_000, "all but the one held");
    assert!(!gone.contains(&held[0].id));
    let renewed = execution::Entity::find_by_id(held[0].id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renewed.lease_expires_at.map(to_micros),
        Some(to_micros(until))
    );
}

/// On PostgreSQL the locked jobs are decoded by position: every field, NULL or
/// not, must come back as sea-orm reads the same rows by name.
#[tokio::test]
async fn locked_jobs_read_back_exactly_as_stored() {
    let fixture = EngineFixture::new().await;
    let due = Utc::now() - Duration::minutes(1);
    let mut yearly = JobSpec::cron("0 0 1 1 *", "http://127.0.0.1:9/yearly");
    yearly.next_run_at = due;
    yearly.timezone = "Europe/Paris".to_owned();
    yearly.concurrency = "forbid".to_owned();
    let mut once = JobSpec::once(due, "http://127.0.0.1:9/once");
    once.body = None;
    once.max_attempts = 3;
    let yearly = fixture.insert_job(yearly).await;
    let once = fixture.insert_job(once).await;
    let db = fixture.database.conn();
    job::Entity::update_many()
        .col_expr(job::Column::Key, Expr::value(Some("the-key")))
        .col_expr(job::Column::DisabledReason, Expr::value(Some("a reason ü")))
        .col_expr(job::Column::CompletedAt, Expr::value(Some(due)))
        .col_expr(job::Column::ConsecutiveFailures, Expr::value(7))
        .filter(job::Column::Id.eq(once))
        .exec(db)
        .await
        .unwrap();

    let transaction = fixture.database.begin_write().await.unwrap();
    let now = Utc::now();
    let mut locked = lock_due_jobs(&transaction, now, now, 10).await.unwrap();
    drop(transaction);
    let mut stored = job::Entity::find().all(db).await.unwrap();
    locked.sort_by_key(|job| job.id);
    stored.sort_by_key(|job| job.id);
    assert_eq!(
        stored.iter().map(|job| job.id).collect::<Vec<_>>(),
        {
            let mut ids = vec![yearly, once];
            ids.sort();
            ids
        },
        "both jobs are due"
    );
    assert_eq!(locked, stored);
    let once = stored.iter().find(|job| job.id == once).unwrap();
    assert_eq!(once.key.as_deref(), Some("the-key"));
    assert_eq!(once.body, None);
    assert!(once.run_at.is_some() && once.cron.is_none());
}

/// First attempts of `count` occurrences of a job, due `now`, scheduled one
/// second apart from `skip_s` seconds before `now` backwards.
fn first_attempts(
    job_id: Uuid,
    organization_id: Uuid,
    now: DateTime<Utc>,
    skip_s: i64,
    count: i64,
) -> Vec<NewExecution> {
    (0..count)
        .map(|i| NewExecution {
            job_id,
            organization_id,
            scheduled_for: now - Duration::seconds(skip_s + i),
            attempt: 1,
            trigger: "schedule",
            status: "pending",
            run_after: now,
            error: None,
        })
        .collect()
}

/// What `EXPLAIN` says of `statement`, one line per plan line.
async fn plan_of(db: &sea_orm::DatabaseConnection, statement: &Statement) -> String {
    let explain = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!("EXPLAIN {}", statement.sql),
        statement.values.clone().unwrap().0,
    );
    let plan: Vec<String> = db
        .query_all(explain)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect();
    plan.join("\n")
}

/// An outcome of `ms` milliseconds, started `ms` after `now`.
fn outcome(
    now: DateTime<Utc>,
    status: &'static str,
    ms: i64,
    code: Option<i32>,
    body: Option<&str>,
    error: Option<&str>,
) -> AttemptOutcome {
    AttemptOutcome {
        status,
        started_at: now + Duration::milliseconds(ms),
        finished_at: now + Duration::milliseconds(2 * ms),
        duration_ms: ms,
        lag_ms: ms + 1,
        status_code: code,
        response_body: body.map(str::to_owned),
        error: error.map(str::to_owned),
    }
}

/// A burst of executions running on one node over a history the planner's
/// statistics saw with almost none running (as in production): the
/// recorder's lock of a batch must reach each row by its primary key, not scan
/// the running queue's partial index (small, by those statistics) and filter
/// it by id, a cost per row that grows with the number running. PostgreSQL
/// only: SQLite plans `IN` lists by primary key.
#[tokio::test]
async fn the_recorder_locks_running_rows_through_their_primary_key() {
    let fixture = EngineFixture::new().await;
    let db = fixture.database.conn();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let now = Utc::now();
    let lease = Lease {
        node_id: "busy-node".to_owned(),
        started_at: now,
        expires_at: now + Duration::seconds(30),
    };
    let mut jobs = Vec::new();
    for j in 0..20 {
        jobs.push(
            fixture
                .insert_job(JobSpec::once(now, &format!("http://127.0.0.1:9/{j}")))
                .await,
        );
    }
    let mut running = Vec::new();
    for round in 0..2 {
        running.clear();
        for job_id in &jobs {
            let rows = first_attempts(*job_id, fixture.organization_id, now, 1000 * round, 250);
            running.extend(
                insert_running_executions(db, rows, &lease, now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|row| row.id),
            );
        }
        if round == 0 {
            // History: finished, and analyzed as such.
            execution::Entity::update_many()
                .col_expr(execution::Column::Status, Expr::value("success"))
                .exec(db)
                .await
                .unwrap();
            db.execute_unprepared("ANALYZE executions").await.unwrap();
        }
    }
    let ids = &running[..256];
    let statement = lock_running_statement(DatabaseBackend::Postgres, &lease.node_id, ids);
    let plan = plan_of(db, &statement).await;
    assert!(
        plan.contains("executions_pkey") && !plan.contains("ix_executions_running"),
        "{plan}"
    );
    // The one-statement update goes by primary key and address too.
    let outcomes: Vec<(Uuid, AttemptOutcome)> = ids
        .iter()
        .map(|id| (*id, outcome(now, "success", 3, Some(200), Some("ok"), None)))
        .collect();
    let update = outcome_update_statement(
        DatabaseBackend::Postgres,
        outcomes.iter(),
        Some("busy-node"),
    );
    let plan = plan_of(db, &update).await;
    assert!(
        plan.contains("Tid Scan") && !plan.contains("ix_executions_running"),
        "{plan}"
    );
    let locked = db.query_all(statement).await.unwrap();
    assert_eq!(
        locked.len(),
        ids.len(),
        "every row asked for is running here"
    );
}

/// `count` executions of one job running on node `recorder`, due `now`.
async fn running_on_recorder(
    fixture: &EngineFixture,
    now: DateTime<Utc>,
    count: i64,
) -> (Lease, Vec<Uuid>) {
    let job_id = fixture
        .insert_job(JobSpec::once(now, "http://127.0.0.1:9/outcomes"))
        .await;
    let lease = Lease {
        node_id: "recorder".to_owned(),
        started_at: now,
        expires_at: now + Duration::seconds(30),
    };
    let rows = first_attempts(job_id, fixture.organization_id, now, 0, count);
    let ids = insert_running_executions(fixture.database.conn(), rows, &lease, now)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    (lease, ids)
}

/// Outcomes recorded in one batch come back column for column, the missing
/// code, body and error as NULL and an empty body as empty, on both backends
/// and by both ways of recording; a row no longer running on the node is left
/// as it was.
#[tokio::test]
async fn outcomes_are_stored_as_recorded() {
    for locked_first in [false, true] {
        let fixture = EngineFixture::new().await;
        let db = fixture.database.conn();
        let now = to_micros(Utc::now());
        let (lease, ids) = running_on_recorder(&fixture, now, 4).await;
        // The fourth was taken over by another node meanwhile.
        execution::Entity::update_many()
            .col_expr(execution::Column::NodeId, Expr::value(Some("other")))
            .filter(execution::Column::Id.eq(ids[3]))
            .exec(db)
            .await
            .unwrap();
        let outcomes = vec![
            (
                ids[0],
                outcome(now, "success", 5, Some(200), Some("ok ü \"'{}\\"), None),
            ),
            (
                ids[1],
                outcome(now, "failed", 7, None, None, Some("connection refused")),
            ),
            (
                ids[2],
                outcome(now, "failed", 9, Some(500), Some(""), Some("")),
            ),
            (ids[3], outcome(now, "success", 11, Some(204), None, None)),
        ];
        let mut recorded = if locked_first {
            record_locked_outcomes(db, &lease.node_id, &outcomes).await
        } else {
            record_outcomes(db, &lease.node_id, &outcomes).await
        }
        .unwrap();
        recorded.sort();
        let mut expected = ids[..3].to_vec();
        expected.sort();
        assert_eq!(recorded, expected);
        for (id, outcome) in &outcomes[..3] {
            let row = execution::Entity::find_by_id(*id)
                .one(db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.status, outcome.status);
            assert_eq!(row.started_at, Some(outcome.started_at));
            assert_eq!(row.finished_at, Some(outcome.finished_at));
            assert_eq!(row.duration_ms, Some(outcome.duration_ms));
            assert_eq!(row.lag_ms, Some(outcome.lag_ms));
            assert_eq!(row.status_code, outcome.status_code);
            assert_eq!(row.response_body, outcome.response_body);
            assert_eq!(row.error, outcome.error);
            assert_eq!(row.lease_expires_at, None);
        }
        let untouched = execution::Entity::find_by_id(ids[3])
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(untouched.status, "running");
        assert_eq!(untouched.response_body, None);
    }
}

/// A lease renewal committed while the outcome's update waits on the row gives
/// the row a new version: the outcome is still recorded (PostgreSQL; SQLite
/// has one writer at a time).
#[tokio::test]
async fn an_outcome_racing_a_lease_renewal_is_still_recorded() {
    let fixture = EngineFixture::new().await;
    let db = fixture.database.conn().clone();
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let now = to_micros(Utc::now());
    let (lease, ids) = running_on_recorder(&fixture, now, 3).await;
    let renewal = fixture.database.begin_write().await.unwrap();
    renew_leases(&renewal, &lease.node_id, &[], now + Duration::seconds(60))
        .await
        .unwrap();
    let outcomes: Vec<(Uuid, AttemptOutcome)> = ids
        .iter()
        .map(|id| (*id, outcome(now, "success", 3, Some(200), Some("ok"), None)))
        .collect();
    let node_id = lease.node_id.clone();
    let recording =
        tokio::spawn(async move { record_outcomes(&db, &node_id, &outcomes).await.unwrap() });
    // The update takes its snapshot and waits for the renewal's row locks.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    renewal.commit().await.unwrap();
    let mut recorded = recording.await.unwrap();
    recorded.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(recorded, expected);
    for id in ids {
        let row = execution::Entity::find_by_id(id)
            .one(fixture.database.conn())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "success");
    }
}
