//! `mcp-auth-broker clients …` and `tokens revoke`: the OAuth clients, and
//! taking grants back in bulk.

use super::{json, table, when, AdminError};
use crate::allowlist::Email;
use crate::store::{now, ClientSummary, Store};

pub async fn list(store: &Store, as_json: bool) -> Result<String, AdminError> {
    let clients = store.clients().await?;
    if as_json {
        return Ok(json(&clients));
    }
    if clients.is_empty() {
        return Ok("no clients have registered".into());
    }
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                c.client_name.clone().unwrap_or_else(|| "-".into()),
                c.kind.clone(),
                c.token_endpoint_auth_method.clone(),
                if c.disabled { "disabled" } else { "active" }.into(),
                when(c.last_used_at),
                when(Some(c.created_at)),
            ]
        })
        .collect();
    Ok(table::render(
        &[
            "CLIENT",
            "NAME",
            "KIND",
            "AUTH",
            "STATUS",
            "LAST USED",
            "ADDED",
        ],
        &rows,
    ))
}

async fn found(store: &Store, client_id: &str) -> Result<ClientSummary, AdminError> {
    store
        .client_summary(client_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client {client_id}")))
}

pub async fn show(store: &Store, client_id: &str, as_json: bool) -> Result<String, AdminError> {
    let c = found(store, client_id).await?;
    if as_json {
        return Ok(json(&c));
    }
    let people = store.grant_holders(None, Some(client_id)).await?.len();
    Ok([
        format!("client:       {}", c.client_id),
        format!("name:         {}", c.client_name.as_deref().unwrap_or("-")),
        format!("kind:         {}", c.kind),
        format!("auth method:  {}", c.token_endpoint_auth_method),
        format!("redirect URIs: {}", c.redirect_uris.join(", ")),
        format!(
            "status:       {}",
            if c.disabled { "disabled" } else { "active" }
        ),
        format!("added:        {}", when(Some(c.created_at))),
        format!("last used:    {}", when(c.last_used_at)),
        format!("people with grants: {people}"),
    ]
    .join("\n"))
}

/// Disabling refuses the client at /authorize and /token and revokes what
/// it holds (a metadata-document client stays disabled when re-fetched).
pub async fn disable(store: &Store, client_id: &str) -> Result<String, AdminError> {
    found(store, client_id).await?;
    store.set_client_disabled(client_id, true).await?;
    let people = revoke_grants(store, None, Some(client_id)).await?;
    Ok(format!(
        "disabled {client_id}; revoked its tokens for {people} people"
    ))
}

pub async fn enable(store: &Store, client_id: &str) -> Result<String, AdminError> {
    found(store, client_id).await?;
    store.set_client_disabled(client_id, false).await?;
    Ok(format!(
        "enabled {client_id}; people must sign in through it again"
    ))
}

pub async fn delete(store: &Store, client_id: &str) -> Result<String, AdminError> {
    found(store, client_id).await?;
    let people = revoke_grants(store, None, Some(client_id)).await?;
    store.delete_client(client_id).await?;
    Ok(format!(
        "deleted {client_id} and revoked its tokens for {people} people; a dynamic client must register again"
    ))
}

/// Which grants `tokens revoke` takes back.
pub enum Selection<'a> {
    User(&'a str),
    Client(&'a str),
    All,
}

pub async fn revoke_tokens(store: &Store, selection: Selection<'_>) -> Result<String, AdminError> {
    let (user, client, what) = match selection {
        Selection::User(raw) => {
            let email = Email::parse(raw).map_err(AdminError::BadInput)?;
            let person = store
                .user(&email)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("{email} is not on the allowlist")))?;
            (Some(person.user_id), None, email.to_string())
        }
        Selection::Client(id) => {
            found(store, id).await?;
            (None, Some(id.to_owned()), format!("client {id}"))
        }
        Selection::All => (None, None, "everyone".to_owned()),
    };
    let grants = revoke_grants(store, user.as_deref(), client.as_deref()).await?;
    Ok(format!(
        "revoked {grants} grants of {what}: refresh tokens at once, access tokens within revocation.max_staleness; the approvals are forgotten too"
    ))
}

/// Revokes every grant matching the filter; how many there were.
async fn revoke_grants(
    store: &Store,
    user_id: Option<&str>,
    client_id: Option<&str>,
) -> Result<usize, AdminError> {
    let at = now();
    let pairs = store.grant_holders(user_id, client_id).await?;
    for (user, client) in &pairs {
        store.revoke_grant_of(user, client, at).await?;
    }
    Ok(pairs.len())
}
