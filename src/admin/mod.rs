//! Admin CLI commands over the store. Each returns what to print or an
//! `AdminError` whose exit status scripts can rely on.

pub mod audit;
pub mod clients;
pub mod consents;
pub mod diagnose;
pub mod domains;
pub mod keys;
mod table;
pub mod users;

use std::process::ExitCode;

use crate::store::StoreError;

/// The CLI boundary's error: message for the person, status for the script.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Exit 1: the thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Exit 2: the input (arguments, file, config) is wrong.
    #[error("{0}")]
    BadInput(String),
    /// Exit 3: the database cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Exit 1: `doctor` found a problem (the report says which).
    #[error("{0}")]
    CheckFailed(String),
}

impl AdminError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            AdminError::NotFound(_) | AdminError::CheckFailed(_) => 1,
            AdminError::BadInput(_) => 2,
            AdminError::Unavailable(_) => 3,
        })
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(_) => AdminError::BadInput(e.to_string()),
            StoreError::Unavailable(_) | StoreError::Migration(_) => {
                AdminError::Unavailable(e.to_string())
            }
        }
    }
}

/// Timestamps in human output: RFC 3339, UTC, to the second.
fn when(unix: Option<i64>) -> String {
    match unix {
        Some(t) if t >= 0 => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64),
        )
        .to_string(),
        _ => "-".into(),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data serialises")
}
