//! `/api/v1/orgs/{org}/audit-log` (organization admins) and
//! `/api/v1/admin/audit-log` (platform admins and the service token).

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::caller::Caller;
use crate::error::{ApiError, Problem};
use crate::pagination::{Page, PageQuery};
use crate::service::audit::{self, AuditEventView, ListAudit};
use crate::state::AppState;

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditLogQuery {
    /// Only this action, e.g. `job.created` or `auth.login_failed`.
    pub action: Option<String>,
    /// Only this actor: a user or API key id, or `admin`, `system`, `anonymous`.
    pub actor: Option<String>,
    /// RFC 3339: events at or after this instant.
    pub since: Option<String>,
    /// RFC 3339: events before this instant.
    pub until: Option<String>,
}

/// The platform log's extra filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PlatformAuditLogQuery {
    /// Only this organization (slug).
    pub org: Option<String>,
    /// Only this organization (id; also finds a deleted organization's events).
    pub org_id: Option<String>,
}

fn list_audit(page: PageQuery, filter: AuditLogQuery, limit: u64) -> ListAudit {
    ListAudit {
        action: filter.action,
        actor: filter.actor,
        since: filter.since,
        until: filter.until,
        org: None,
        org_id: None,
        cursor: page.cursor,
        limit,
    }
}

/// The organization's audit log, newest first (admins and owners).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery, AuditLogQuery),
    responses(
        (status = 200, body = Page<AuditEventView>),
        (status = 403, description = "members may not read it", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad filter, by name", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/orgs/{org}/audit-log")]
pub async fn organization_log(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditLogQuery>,
) -> Result<web::Json<Page<AuditEventView>>, ApiError> {
    let limit = page.limit()?;
    let query = list_audit(page.into_inner(), filter.into_inner(), limit);
    Ok(web::Json(
        audit::organization_log(&state, &caller, &path, &query).await?,
    ))
}

/// Every organization's audit log and the platform-wide events (sign-ins, admin
/// changes), newest first (platform admins and the service token).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(PageQuery, AuditLogQuery, PlatformAuditLogQuery),
    responses(
        (status = 200, body = Page<AuditEventView>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad filter, by name", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/admin/audit-log")]
pub async fn platform_log(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditLogQuery>,
    org: web::Query<PlatformAuditLogQuery>,
) -> Result<web::Json<Page<AuditEventView>>, ApiError> {
    let limit = page.limit()?;
    let org = org.into_inner();
    let query = ListAudit {
        org: org.org,
        org_id: org.org_id,
        ..list_audit(page.into_inner(), filter.into_inner(), limit)
    };
    Ok(web::Json(
        audit::platform_log(&state, &caller, &query).await?,
    ))
}
