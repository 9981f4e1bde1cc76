//! `mcp-auth-broker domains …`

use super::{json, table, when, AdminError};
use crate::allowlist::Domain;
use crate::store::Store;

fn domain(raw: &str) -> Result<Domain, AdminError> {
    Domain::parse(raw).map_err(AdminError::BadInput)
}

pub async fn add(store: &Store, raw: &str) -> Result<String, AdminError> {
    let domain = domain(raw)?;
    Ok(if store.add_domain(&domain).await? {
        format!("allowed every verified email of {domain}")
    } else {
        format!("{domain} is already allowed; nothing changed")
    })
}

pub async fn remove(store: &Store, raw: &str) -> Result<String, AdminError> {
    let domain = domain(raw)?;
    if store.remove_domain(&domain).await? {
        Ok(format!(
            "removed {domain}; people already on the allowlist stay there"
        ))
    } else {
        Err(AdminError::NotFound(format!(
            "{domain} is not an allowed domain"
        )))
    }
}

pub async fn list(store: &Store, as_json: bool) -> Result<String, AdminError> {
    let domains = store.domains().await?;
    if as_json {
        let rows: Vec<_> = domains
            .iter()
            .map(|(domain, added)| serde_json::json!({ "domain": domain, "created_at": added }))
            .collect();
        return Ok(json(&rows));
    }
    if domains.is_empty() {
        return Ok("no allowed domains".into());
    }
    let rows: Vec<Vec<String>> = domains
        .iter()
        .map(|(domain, added)| vec![domain.to_string(), when(Some(*added))])
        .collect();
    Ok(table::render(&["DOMAIN", "ADDED"], &rows))
}
