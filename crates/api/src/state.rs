//! What every handler can reach.

use metrics_exporter_prometheus::PrometheusHandle;
use punctual_persistence::Database;

/// Shared application state, cloned into each worker.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub database: Database,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
}
