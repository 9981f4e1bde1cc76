//! The database: one pool over SQLite or PostgreSQL (sqlx's `Any` driver),
//! portable SQL (TEXT, BIGINT unix seconds, `$n` placeholders), one module
//! per table group.

mod audit;
mod clients;
mod domains;
mod flows;
mod grants;
mod keys;
mod purge;
mod revocations;
mod sessions;
mod shared_secrets;
mod users;

pub use audit::{AuditEntry, AuditEvent};
pub use clients::{Client, ClientSummary, NewClient, PRIVATE_KEY_JWT};
pub use flows::{AuthCode, AuthRequest};
pub use grants::{Consent, NewRefreshToken, Redemption, RefreshToken};
pub use keys::StoredKey;
pub use revocations::{ChangeCursors, Changes, RemovedUser, RevokedGrant, RevokedJti};
pub use sessions::BrowserSession;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::config::DatabaseSettings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        match url.split(':').next()? {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, refusing, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with a refusal (a constraint, bad data).
    #[error("database refused the change: {0}")]
    Rejected(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Rejected(e)
        }
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // PostgreSQL class 08 (connection exception), 28 (authentication),
            // 57P0x (shutting down, cannot connect now), 53300 (too many
            // connections), 3D000 (no such database).
            Some(code) if ["08", "28", "57P"].iter().any(|c| code.starts_with(c)) => true,
            Some("53300" | "3D000") => true,
            // SQLite: SQLITE_BUSY (5) and its kinds, SQLITE_CANTOPEN (14),
            // SQLITE_IOERR (10).
            Some("5" | "261" | "517" | "10" | "14") => true,
            _ => false,
        },
        _ => false,
    }
}

/// Runs a write again when SQLite refused it without waiting: another
/// writer committed between its first read and its first write
/// (SQLITE_BUSY_SNAPSHOT), or held the lock at that moment (SQLITE_BUSY).
/// Starting over helps where waiting cannot. Admin writes go through this,
/// since they share the file with a busy server.
pub(super) async fn retrying<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    for _ in 0..5 {
        match transaction().await {
            // SQLITE_BUSY too: SQLite returns it at once, without waiting,
            // when a transaction that has read must wait to write.
            Err(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("5" | "517")) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.map_err(StoreError::from),
        }
    }
    transaction().await.map_err(StoreError::from)
}

/// Cheap to clone: the pool is reference-counted.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the pool and checks that the database answers.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(&settings.url).ok_or_else(|| {
            StoreError::Rejected(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL scheme in {:?}",
                    redact(&settings.url)
                )
                .into(),
            ))
        })?;
        let mut options = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.connect_timeout.0);
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while a writer commits; the server and
            // admin CLI share the file.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        // One direct connection first: a pool would only report that it timed
        // out, and the admin needs to see "connection refused" or "no such file".
        AnyConnection::connect(&settings.url).await?.close().await?;
        let pool = options.connect(&settings.url).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Connections open and idle in this replica's pool.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Migrations this binary has that the database has not applied.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(versions) => versions,
                // No bookkeeping table yet: nothing was ever applied.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(self
            .backend
            .migrator()
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count())
    }

    /// One round trip, bounded by `timeout`: the readiness probe.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.pool.execute("SELECT 1")).await {
            Ok(result) => result.map(drop).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a caller-supplied key could exist at all. Keys with control
/// characters cannot (and PostgreSQL refuses NUL outright), so every engine
/// answers "not found" alike, without a query.
fn plausible_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 512 && !key.chars().any(char::is_control)
}

/// Unix seconds, the portable timestamp of every table.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A database URL safe to print: any password replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn text(row: &AnyRow, column: &str) -> Result<String, sqlx::Error> {
    sqlx::Row::try_get(row, column)
}

fn parse_column<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    text(row, column)?
        .parse()
        .map_err(|e: String| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: e.into(),
        })
}
