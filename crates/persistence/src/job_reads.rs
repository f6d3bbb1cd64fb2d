//! Reads of single jobs from many concurrent requests, answered together.
//!
//! A GET of a job is one small statement; on PostgreSQL most of its cost is the
//! round trip around it (and sqlx's ping when the connection goes back to the
//! pool), not the index probes. [`JobReads`] queues the reads and a task answers
//! whatever has queued while its previous statement ran with one statement
//! ([`jobs::find_jobs_with_latest_execution`]): an idle service answers a read at
//! once, a busy one spends one round trip on many reads (two statements may run
//! at once, so one slow statement does not hold up every read). Each read is still
//! scoped by its own organization, and a read queued after a write committed is
//! answered by a statement that starts after it, so it sees the write.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::jobs::{self, JobWithLatest, MAX_KEYS_PER_READ};
use crate::{Database, PersistenceError};

/// Reads waiting for the task before senders wait too.
const QUEUE_CAPACITY: usize = 4096;

/// Statements a worker's reads may have running at once, so that one slow
/// statement (or a wait for a pooled connection) does not hold up every read.
const BATCHES_IN_FLIGHT: usize = 2;

type Reply = oneshot::Sender<Result<Option<JobWithLatest>, PersistenceError>>;

struct Request {
    key: (Uuid, Uuid),
    reply: Reply,
}

/// A handle on a task that reads jobs in batches; cheap to clone. The task ends
/// when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct JobReads {
    requests: mpsc::Sender<Request>,
}

impl JobReads {
    /// Starts the task on the current Tokio runtime.
    pub fn start(database: Database) -> Self {
        let (requests, queued) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(answer(database, queued));
        Self { requests }
    }

    /// The job `id` of the organization with its newest execution.
    pub async fn find(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<JobWithLatest>, PersistenceError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            key: (organization_id, id),
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| PersistenceError::Stopped("job reads"))?;
        answer
            .await
            .map_err(|_| PersistenceError::Stopped("job reads"))?
    }
}

async fn answer(database: Database, mut queued: mpsc::Receiver<Request>) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        // A free slot first: while every slot is busy, reads keep queuing and
        // the next statement takes them all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_KEYS_PER_READ);
        if queued.recv_many(&mut batch, MAX_KEYS_PER_READ).await == 0 {
            return;
        }
        let database = database.clone();
        tokio::spawn(async move {
            answer_batch(&database, batch).await;
            drop(slot);
        });
    }
}

async fn answer_batch(database: &Database, batch: Vec<Request>) {
    // How much batching there is: 1 on an idle server, more as reads pile up.
    metrics::histogram!("punctual_job_reads_batch_size").record(batch.len() as f64);
    let keys: Vec<(Uuid, Uuid)> = batch.iter().map(|request| request.key).collect();
    match jobs::find_jobs_with_latest_execution(database.conn(), &keys).await {
        Ok(found) => {
            // Several requests may read the same job.
            for request in batch {
                let _ = request.reply.send(Ok(found.get(&request.key).cloned()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = batch.len(), "batched job read failed; reading one by one");
            // Each read gets its own answer, or its own error.
            for request in batch {
                let result = jobs::find_jobs_with_latest_execution(database.conn(), &[request.key])
                    .await
                    .map(|mut found| found.remove(&request.key));
                let _ = request.reply.send(result);
            }
        }
    }
}
