//! `mcp-auth-broker audit tail`: the recent audit log.

use std::time::Duration;

use super::{json, table, when, AdminError};
use crate::allowlist::Email;
use crate::store::{now, Store};

pub async fn tail(
    store: &Store,
    user: Option<&str>,
    since: Duration,
    limit: i64,
    as_json: bool,
) -> Result<String, AdminError> {
    let email = user
        .map(|raw| Email::parse(raw).map_err(AdminError::BadInput))
        .transpose()?;
    let from = now() - since.as_secs() as i64;
    let entries = store
        .audit_since(from, email.as_ref().map(|e| e.as_str()), limit)
        .await?;
    if as_json {
        return Ok(json(&entries));
    }
    if entries.is_empty() {
        return Ok("no audit entries in that period".into());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                when(Some(e.at)),
                e.event.clone(),
                e.email.clone().unwrap_or_else(|| "-".into()),
                e.client_id.clone().unwrap_or_else(|| "-".into()),
                e.ip.clone().unwrap_or_else(|| "-".into()),
                e.detail.to_string(),
            ]
        })
        .collect();
    Ok(table::render(
        &["TIME", "EVENT", "EMAIL", "CLIENT", "IP", "DETAIL"],
        &rows,
    ))
}
