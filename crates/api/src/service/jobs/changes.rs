//! What the audit log says about a job: its name and key, and which fields a save
//! changed — by name only, since a job's headers, body and URL may carry the
//! caller's credentials for the target.

use punctual_domain::{JobKey, JobSpec};
use serde_json::{json, Value};

use super::input::input_document;

/// The job's identity in an audit entry.
pub(super) fn job_metadata(spec: &JobSpec) -> Value {
    json!({
        "name": spec.name.as_str(),
        "key": spec.key.as_ref().map(JobKey::as_str),
    })
}

/// The job's identity plus the fields that differ between `previous` and `spec`
/// (`request.url`, `schedule.cron`, `enabled`, ...), never their values.
pub(super) fn update_metadata(previous: &JobSpec, spec: &JobSpec) -> Value {
    let mut metadata = job_metadata(spec);
    if let Value::Object(map) = &mut metadata {
        map.insert(
            "changed".to_owned(),
            Value::from(changed_fields(previous, spec)),
        );
    }
    metadata
}

/// Names of the fields that differ, one level into `request`, `schedule` and `retry`.
fn changed_fields(previous: &JobSpec, spec: &JobSpec) -> Vec<String> {
    let before = input_document(previous);
    let after = input_document(spec);
    let (Value::Object(before), Value::Object(after)) = (&before, &after) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (before.get(name), after.get(name)) {
            (Some(Value::Object(old)), Some(Value::Object(new))) => {
                let mut inner: Vec<&String> = old.keys().chain(new.keys()).collect();
                inner.sort();
                inner.dedup();
                changed.extend(
                    inner
                        .into_iter()
                        .filter(|field| old.get(*field) != new.get(*field))
                        .map(|field| format!("{name}.{field}")),
                );
            }
            (old, new) if old != new => changed.push(name.clone()),
            _ => {}
        }
    }
    changed
}
