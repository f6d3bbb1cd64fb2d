//! Reading jobs in batches (`jobs::find_jobs_with_latest_execution`, and the
//! `JobReads` task that the GET of a job goes through): every key gets its own
//! job with its newest execution, only in its own organization, whatever the
//! batch's size, and concurrent reads of the same job each get an answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jobs_support;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use jobs_support::*;
use punctual_persistence::job_reads::JobReads;
use punctual_persistence::jobs::{find_jobs_with_latest_execution, MAX_KEYS_PER_READ};
use punctual_tests::{spawn_app, TestApp, TestOrg};
use reqwest::Method;
use uuid::Uuid;

/// What a key should read: the job's id and its newest execution's id, or nothing.
type Expected = HashMap<(Uuid, Uuid), Option<Option<Uuid>>>;

struct Tenants {
    expected: Expected,
    /// Right keys, keys with the other organization, and unknown job ids, interleaved.
    keys: Vec<(Uuid, Uuid)>,
}

/// Two organizations with `per_org` jobs each; every third job has two
/// executions (the later one is its newest), the others none.
async fn tenants(app: &TestApp, per_org: usize) -> Tenants {
    let mut orgs: Vec<TestOrg> = Vec::new();
    let mut jobs: Vec<(usize, Uuid, Option<Uuid>)> = Vec::new();
    for org_index in 0..2 {
        let (owner, org) = owner_with_org(app).await;
        for n in 0..per_org {
            let created = create_job(app, &owner.access_token, &org, &job(&format!("j{n}"))).await;
            let id_text = created["id"].as_str().unwrap();
            let newest = if n % 3 == 0 {
                let earlier = Utc::now() - Duration::minutes(10);
                insert_execution(app, &org, id_text, "failed", earlier).await;
                Some(insert_execution(app, &org, id_text, "success", Utc::now()).await)
            } else {
                None
            };
            jobs.push((org_index, id_text.parse().unwrap(), newest));
        }
        orgs.push(org);
    }
    let org_ids: Vec<Uuid> = orgs.iter().map(|org| org.id.parse().unwrap()).collect();
    let mut expected = Expected::new();
    let mut keys = Vec::new();
    for (index, (org_index, job_id, newest)) in jobs.iter().enumerate() {
        let right = (org_ids[*org_index], *job_id);
        let wrong = (org_ids[1 - org_index], *job_id);
        expected.insert(right, Some(*newest));
        expected.insert(wrong, None);
        keys.push(right);
        keys.push(wrong);
        if index % 4 == 0 {
            let unknown = (org_ids[*org_index], Uuid::new_v4());
            expected.insert(unknown, None);
            keys.push(unknown);
        }
    }
    Tenants { expected, keys }
}

fn check(
    tenants: &Tenants,
    key: &(Uuid, Uuid),
    found: Option<&(
        punctual_persistence::entities::job::Model,
        Option<punctual_persistence::entities::execution::Model>,
    )>,
) {
    match (&tenants.expected[key], found) {
        (None, None) => {}
        (Some(newest), Some((job, latest))) => {
            assert_eq!((job.organization_id, job.id), *key);
            assert_eq!(latest.as_ref().map(|e| e.id), *newest, "newest execution");
        }
        (expected, found) => panic!(
            "key {key:?}: expected {expected:?}, read {:?}",
            found.map(|(job, _)| (job.organization_id, job.id))
        ),
    }
}

#[tokio::test]
async fn one_statement_reads_each_key_only_in_its_own_organization_at_every_batch_size() {
    let app = spawn_app().await;
    let tenants = tenants(&app, 20).await;
    assert!(
        tenants.keys.len() > MAX_KEYS_PER_READ,
        "spans two statements"
    );
    // Every padded size (1, 2, 4, … 64), sizes between them, and more than one statement.
    for size in [
        1,
        2,
        3,
        4,
        5,
        8,
        9,
        16,
        17,
        31,
        33,
        64,
        65,
        tenants.keys.len(),
    ] {
        for start in [0, tenants.keys.len() - size] {
            let keys = &tenants.keys[start..start + size];
            let found = find_jobs_with_latest_execution(app.database.conn(), keys)
                .await
                .unwrap();
            for key in keys {
                check(&tenants, key, found.get(key));
            }
            assert!(
                found.keys().all(|key| keys.contains(key)),
                "only what was asked"
            );
        }
    }
    assert!(find_jobs_with_latest_execution(app.database.conn(), &[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn concurrent_reads_each_get_their_own_answer_even_for_the_same_job() {
    let app = spawn_app().await;
    let tenants = tenants(&app, 12).await;
    let reads = JobReads::start(app.database.clone());
    // Every key three times, all queued at once: the task answers them in batches
    // that hold the same key several times.
    let mut pending = tokio::task::JoinSet::new();
    for round in 0..3 {
        for key in tenants.keys.iter().copied() {
            let reads = reads.clone();
            pending.spawn(async move { (round, key, reads.find(key.0, key.1).await.unwrap()) });
        }
    }
    let mut answered = 0;
    while let Some(done) = pending.join_next().await {
        let (_, key, found) = done.unwrap();
        check(&tenants, &key, found.as_ref());
        answered += 1;
    }
    assert_eq!(answered, 3 * tenants.keys.len());
}

#[tokio::test]
async fn concurrent_gets_of_two_organizations_jobs_stay_apart() {
    let app = spawn_app().await;
    let (owner, org) = owner_with_org(&app).await;
    let (intruder, intruder_org) = owner_with_org(&app).await;
    let mine = create_job(&app, &owner.access_token, &org, &job("mine")).await;
    let theirs = create_job(&app, &intruder.access_token, &intruder_org, &job("theirs")).await;
    let mine_id = mine["id"].as_str().unwrap();
    let theirs_id = theirs["id"].as_str().unwrap();
    let calls = (0..30).flat_map(|_| {
        [
            (
                &owner.access_token,
                job_path(&org, mine_id),
                200,
                Some(mine_id),
            ),
            (
                &intruder.access_token,
                job_path(&intruder_org, mine_id),
                404,
                None,
            ),
            (&intruder.access_token, job_path(&org, mine_id), 404, None),
            (&owner.access_token, job_path(&org, theirs_id), 404, None),
            (
                &intruder.access_token,
                job_path(&intruder_org, theirs_id),
                200,
                Some(theirs_id),
            ),
        ]
    });
    futures_util::future::join_all(calls.map(|(token, path, status, id)| {
        let app = &app;
        async move {
            let body = call_ok(app, Method::GET, &path, token, None, status).await;
            if let Some(id) = id {
                assert_eq!(body["id"], id, "{path}");
            }
        }
    }))
    .await;
}
