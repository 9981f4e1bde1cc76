//! Shared by the integration tests: a fresh database per test (SQLite by
//! default, PostgreSQL when TEST_DATABASE_URL names a server), settings that
//! point at it, and the broker served on a free loopback port.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mcp_auth_broker::config::{Settings, Sources, UpstreamKind, UpstreamSettings};
use mcp_auth_broker::store::{Backend, Store};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::oneshot;

pub mod audit;
pub mod cimd;
pub mod db_proxy;
pub mod eventually;
pub mod flow;
pub mod gateway;
pub mod oidc_provider;

/// A database of its own for one test, dropped with it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => Self::postgres(admin).await,
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("broker.db").display()
                );
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
        }
    }

    async fn postgres(admin: String) -> TestDb {
        let name = format!("broker_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("TEST_DATABASE_URL reachable");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        TestDb {
            url: url.to_string(),
            _dir: None,
            pg: Some((admin, name)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Rate limits are off: flow tests fire requests faster than people do
    /// (tests/rate_limit.rs switches them on).
    pub fn settings(&self) -> Settings {
        settings_with(&[
            ("BROKER__DATABASE__URL", &self.url),
            ("BROKER__RATE_LIMIT__ENABLED", "false"),
        ])
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.settings().database)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let expected = if self.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        assert_eq!(
            store.backend(),
            expected,
            "the test runs on the engine it was asked for"
        );
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside any runtime guarantee: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A broker in dev mode with `emails` on the allowlist, and a driver for it.
pub async fn dev_broker(emails: &[&str]) -> (TestDb, TestServer, flow::Flow) {
    let db = TestDb::new().await;
    let store = db.store().await;
    for email in emails {
        let email = mcp_auth_broker::allowlist::Email::parse(email).unwrap();
        store
            .upsert_user(&email, &Default::default())
            .await
            .unwrap();
    }
    let server = TestServer::start_dev(db.settings()).await;
    let flow = flow::Flow::new(&server.base);
    (db, server, flow)
}

/// An upstream of kind `oidc` with a plain client secret.
pub fn oidc_upstream(id: &str, issuer: &str, client_id: &str, secret: &str) -> UpstreamSettings {
    UpstreamSettings {
        id: id.into(),
        kind: UpstreamKind::Oidc,
        issuer: issuer.into(),
        client_id: client_id.into(),
        client_secret: Some(secret.into()),
        scopes: vec!["openid".into(), "email".into()],
        ..UpstreamSettings::blank()
    }
}

/// Built-in defaults plus the given BROKER__* variables (never the process env).
pub fn settings_with(env: &[(&str, &str)]) -> Settings {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(&Sources { file: None, env }).expect("test settings are valid")
}

/// A broker serving on a free loopback port until stopped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A reserved port: its address is known before the broker's settings are.
pub struct Reserved {
    listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub base: String,
}

impl Reserved {
    pub async fn new() -> Reserved {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        Reserved {
            listener,
            addr,
            base: format!("http://{addr}"),
        }
    }

    /// A port already bound (e.g. the one a stopped broker used).
    pub fn from_listener(listener: tokio::net::TcpListener) -> Reserved {
        let addr = listener.local_addr().unwrap();
        Reserved {
            listener,
            addr,
            base: format!("http://{addr}"),
        }
    }

    pub fn into_listener(self) -> tokio::net::TcpListener {
        self.listener
    }

    /// Serves the broker here; `public_url` becomes this address.
    pub async fn serve(self, mut settings: Settings) -> TestServer {
        settings.server.public_url = self.base.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            mcp_auth_broker::server::serve(settings, self.listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let server = TestServer {
            addr: self.addr,
            base: self.base,
            stop: Some(stop),
            task: Some(task),
        };
        server.wait_until_serving().await;
        server
    }
}

impl TestServer {
    pub async fn start(settings: Settings) -> TestServer {
        Reserved::new().await.serve(settings).await
    }

    /// With the built-in development provider, as `serve --dev` runs it.
    pub async fn start_dev(settings: Settings) -> TestServer {
        let reserved = Reserved::new().await;
        let mut settings = settings;
        settings.server.public_url = reserved.base.clone();
        settings.enable_dev().expect("loopback public_url");
        reserved.serve(settings).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The socket accepts at once; answers come once start-up (migrations,
    /// keys) is done.
    async fn wait_until_serving(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reqwest::get(self.url("/healthz"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the broker did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// The built binary, run with a clean environment apart from what is given.
pub fn broker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-auth-broker"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}
