//! `mcp-auth-broker consents …`: which clients a person approved, and
//! taking an approval back (with every token the client holds for them).

use super::{json, table, when, AdminError};
use crate::allowlist::{AllowedUser, Email};
use crate::store::{now, Store};

async fn person(store: &Store, raw: &str) -> Result<AllowedUser, AdminError> {
    let email = Email::parse(raw).map_err(AdminError::BadInput)?;
    store
        .user(&email)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("{email} is not on the allowlist")))
}

pub async fn list(store: &Store, user: &str, as_json: bool) -> Result<String, AdminError> {
    let person = person(store, user).await?;
    let consents = store.consents(&person.user_id).await?;
    if as_json {
        return Ok(json(&consents));
    }
    if consents.is_empty() {
        return Ok(format!("{} has approved no clients", person.email));
    }
    let rows: Vec<Vec<String>> = consents
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                c.client_name.clone().unwrap_or_else(|| "-".into()),
                c.scope.clone(),
                when(Some(c.created_at)),
            ]
        })
        .collect();
    Ok(table::render(
        &["CLIENT", "NAME", "SCOPES", "APPROVED"],
        &rows,
    ))
}

/// Revokes the approval of one client (or of all), its refresh tokens for
/// the person, and its access tokens on every replica within
/// `revocation.max_staleness`.
pub async fn revoke(store: &Store, user: &str, client: Option<&str>) -> Result<String, AdminError> {
    let person = person(store, user).await?;
    let clients: Vec<String> = match client {
        Some(id) => vec![id.to_owned()],
        None => store
            .consents(&person.user_id)
            .await?
            .into_iter()
            .map(|c| c.client_id)
            .collect(),
    };
    let at = now();
    let mut revoked = Vec::new();
    for client_id in &clients {
        if store
            .revoke_grant_of(&person.user_id, client_id, at)
            .await?
        {
            revoked.push(client_id.as_str());
        }
    }
    match (revoked.as_slice(), client) {
        ([], Some(id)) => Err(AdminError::NotFound(format!(
            "{} has no approval or tokens for client {id}",
            person.email
        ))),
        ([], None) => Ok(format!(
            "{} has approved no clients; nothing changed",
            person.email
        )),
        (done, _) => Ok(format!(
            "revoked {}'s approval and tokens for {}",
            person.email,
            done.join(", ")
        )),
    }
}
