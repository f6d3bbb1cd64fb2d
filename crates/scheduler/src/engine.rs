use std::time::Duration;

use punctual_persistence::Database;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long shutdown waits for in-flight executions before handing them back.
    pub shutdown_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The job engine of one node.
pub struct Engine {
    database: Database,
    config: EngineConfig,
}

impl Engine {
    /// An engine working on `database`.
    pub fn new(database: Database, config: EngineConfig) -> Self {
        Self { database, config }
    }

    /// Starts the engine's background tasks and returns the handle that stops them.
    pub fn start(self) -> EngineHandle {
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.run(stop.clone()));
        EngineHandle { stop, task }
    }

    async fn run(self, stop: CancellationToken) {
        tracing::info!(backend = ?self.database.backend(), "engine started");
        stop.cancelled().await;
        tracing::info!(grace = ?self.config.shutdown_grace, "engine stopped");
    }
}

/// Stops a running [`Engine`].
pub struct EngineHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl EngineHandle {
    /// Stops claiming work, lets in-flight executions finish within the grace
    /// period, and waits for the engine's tasks to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "engine task ended abnormally");
        }
    }
}
