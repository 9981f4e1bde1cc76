//! `mcp-auth-broker users …`

use std::path::Path;

use super::{json, table, when, AdminError};
use crate::allowlist::{parse_csv, AllowedUser, Email, Role, Status, Upsert, UserChange};
use crate::store::Store;

fn email(raw: &str) -> Result<Email, AdminError> {
    Email::parse(raw).map_err(AdminError::BadInput)
}

fn not_listed(email: &Email) -> AdminError {
    AdminError::NotFound(format!("{email} is not on the allowlist"))
}

pub async fn add(
    store: &Store,
    raw: &str,
    name: Option<String>,
    role: Option<Role>,
) -> Result<String, AdminError> {
    let email = email(raw)?;
    let change = UserChange {
        name,
        role,
        status: None,
    };
    Ok(match store.upsert_user(&email, &change).await? {
        Upsert::Added => format!("added {email} ({})", role.unwrap_or_default()),
        Upsert::Updated => format!("updated {email}"),
        Upsert::Unchanged => format!("{email} is already on the allowlist; nothing changed"),
    })
}

pub async fn remove(store: &Store, raw: &str) -> Result<String, AdminError> {
    let email = email(raw)?;
    if store.remove_user(&email).await? {
        Ok(format!("removed {email}"))
    } else {
        Err(not_listed(&email))
    }
}

pub async fn set_status(store: &Store, raw: &str, status: Status) -> Result<String, AdminError> {
    let email = email(raw)?;
    match store.set_user_status(&email, status).await? {
        None => Err(not_listed(&email)),
        Some(Upsert::Unchanged) => Ok(format!("{email} is already {status}")),
        Some(_) => Ok(format!("{email} is now {status}")),
    }
}

pub async fn list(store: &Store, as_json: bool) -> Result<String, AdminError> {
    let users = store.users().await?;
    if as_json {
        return Ok(json(&users));
    }
    if users.is_empty() {
        return Ok("the allowlist is empty (add someone with `users add EMAIL`)".into());
    }
    let rows: Vec<Vec<String>> = users.iter().map(row).collect();
    Ok(table::render(
        &[
            "EMAIL",
            "NAME",
            "ROLE",
            "STATUS",
            "PROVIDER",
            "LAST LOGIN",
            "ADDED",
        ],
        &rows,
    ))
}

fn row(user: &AllowedUser) -> Vec<String> {
    vec![
        user.email.to_string(),
        user.name.clone().unwrap_or_else(|| "-".into()),
        user.role.to_string(),
        user.status.to_string(),
        user.provider.clone().unwrap_or_else(|| "-".into()),
        when(user.last_login_at),
        when(Some(user.created_at)),
    ]
}

pub async fn import(store: &Store, file: &Path) -> Result<String, AdminError> {
    let shown = file.display();
    let input = std::fs::File::open(file)
        .map_err(|e| AdminError::BadInput(format!("cannot read {shown}: {e}")))?;
    let rows = parse_csv(input)
        .map_err(|e| AdminError::BadInput(format!("{shown}: {e}; nothing was applied")))?;
    let report = store.import_users(&rows).await?;
    Ok(format!(
        "imported {shown}: {} added, {} updated, {} unchanged",
        report.added, report.updated, report.unchanged
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// CSV export is in the shape `users import` reads back.
pub async fn export(store: &Store, format: ExportFormat) -> Result<String, AdminError> {
    let users = store.users().await?;
    if format == ExportFormat::Json {
        return Ok(json(&users));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write_err = |e: csv::Error| AdminError::BadInput(format!("cannot write CSV: {e}"));
    writer
        .write_record(["email", "name", "role", "status"])
        .map_err(write_err)?;
    for user in &users {
        writer
            .write_record([
                user.email.as_str(),
                user.name.as_deref().unwrap_or_default(),
                user.role.as_str(),
                user.status.as_str(),
            ])
            .map_err(write_err)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AdminError::BadInput(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
}
