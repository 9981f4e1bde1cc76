//! The store's behaviour, the same bodies on SQLite and on PostgreSQL
//! (TEST_DATABASE_URL selects the engine; CI runs both).

mod support;

use mcp_auth_broker::allowlist::{parse_csv, Domain, Email, Role, Status, Upsert, UserChange};
use mcp_auth_broker::store::{Store, StoreError};
use support::TestDb;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn named(name: &str, role: Role) -> UserChange {
    UserChange {
        name: Some(name.into()),
        role: Some(role),
        status: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.users().await.unwrap().is_empty());
}

#[tokio::test]
async fn add_find_update_and_unchanged() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let alice = email("alice@example.com");
    assert_eq!(
        store
            .upsert_user(&alice, &named("Alice", Role::Admin))
            .await
            .unwrap(),
        Upsert::Added
    );
    let row = store.user(&alice).await.unwrap().unwrap();
    assert_eq!(row.name.as_deref(), Some("Alice"));
    assert_eq!(row.role, Role::Admin);
    assert_eq!(row.status, Status::Active);
    assert!(uuid::Uuid::parse_str(&row.user_id).is_ok());

    assert_eq!(
        store
            .upsert_user(&alice, &UserChange::default())
            .await
            .unwrap(),
        Upsert::Unchanged
    );
    assert_eq!(
        store
            .upsert_user(&alice, &named("Alice A", Role::Admin))
            .await
            .unwrap(),
        Upsert::Updated
    );
    let again = store.user(&alice).await.unwrap().unwrap();
    assert_eq!(again.name.as_deref(), Some("Alice A"));
    assert_eq!(again.user_id, row.user_id, "the stable id never changes");
}

#[tokio::test]
async fn suspend_activate_remove() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let bob = email("bob@example.com");
    assert_eq!(
        store
            .set_user_status(&bob, Status::Suspended)
            .await
            .unwrap(),
        None
    );
    store
        .upsert_user(&bob, &UserChange::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .set_user_status(&bob, Status::Suspended)
            .await
            .unwrap(),
        Some(Upsert::Updated)
    );
    assert_eq!(
        store
            .set_user_status(&bob, Status::Suspended)
            .await
            .unwrap(),
        Some(Upsert::Unchanged)
    );
    assert_eq!(
        store.user(&bob).await.unwrap().unwrap().status,
        Status::Suspended
    );
    assert_eq!(
        store.set_user_status(&bob, Status::Active).await.unwrap(),
        Some(Upsert::Updated)
    );
    assert!(store.remove_user(&bob).await.unwrap());
    assert!(!store.remove_user(&bob).await.unwrap());
    assert!(store.user(&bob).await.unwrap().is_none());
}

#[tokio::test]
async fn list_is_ordered_by_email() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for e in ["carol@example.com", "alice@example.com", "bob@example.com"] {
        store
            .upsert_user(&email(e), &UserChange::default())
            .await
            .unwrap();
    }
    let emails: Vec<String> = store
        .users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.email.to_string())
        .collect();
    assert_eq!(
        emails,
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );
}

#[tokio::test]
async fn import_reports_and_is_all_or_nothing() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .upsert_user(&email("old@example.com"), &named("Old", Role::User))
        .await
        .unwrap();
    store
        .upsert_user(&email("same@example.com"), &named("Same", Role::User))
        .await
        .unwrap();
    let rows = parse_csv("email,name,role\nnew@example.com,New,admin\nold@example.com,Older,\nsame@example.com,Same,user\n".as_bytes()).unwrap();
    let report = store.import_users(&rows).await.unwrap();
    assert_eq!((report.added, report.updated, report.unchanged), (1, 1, 1));
    assert_eq!(
        store
            .user(&email("old@example.com"))
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Older")
    );

    // A row the database refuses half-way through (a trigger stands in for
    // any failure) leaves no trace of the rows before it.
    let trigger = if db.is_postgres() {
        "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN \
           IF NEW.email = 'boom@example.com' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; \
         END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER boom BEFORE INSERT ON allowed_users FOR EACH ROW EXECUTE FUNCTION boom();"
    } else {
        "CREATE TRIGGER boom BEFORE INSERT ON allowed_users WHEN NEW.email = 'boom@example.com' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END;"
    };
    raw(&db, trigger).await.unwrap();
    let rows = parse_csv(
        "first@example.com,First,user\nold@example.com,Changed,admin\nboom@example.com,,\n"
            .as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        store.import_users(&rows).await,
        Err(StoreError::Rejected(_))
    ));
    assert!(store
        .user(&email("first@example.com"))
        .await
        .unwrap()
        .is_none());
    let old = store
        .user(&email("old@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((old.name.as_deref(), old.role), (Some("Older"), Role::User));
}

#[tokio::test]
async fn database_refuses_what_the_broker_could_not_use() {
    let db = TestDb::new().await;
    let store = db.store().await;
    // Admin SQL with an upper-case email or an unknown role is refused by the
    // schema's checks, not silently stored.
    for sql in [
        "INSERT INTO allowed_users (email) VALUES ('Alice@Example.com')",
        "INSERT INTO allowed_users (email, role) VALUES ('a@example.com', 'root')",
        "INSERT INTO allowed_users (email, status) VALUES ('a@example.com', 'gone')",
        "INSERT INTO allowed_domains (domain) VALUES ('Example.COM')",
    ] {
        assert!(raw(&db, sql).await.is_err(), "accepted: {sql}");
    }
    assert!(store.users().await.unwrap().is_empty());
}

#[tokio::test]
async fn admin_updates_by_sql_move_updated_at() {
    let db = TestDb::new().await;
    let store = db.store().await;
    raw(
        &db,
        "INSERT INTO allowed_users (email) VALUES ('sql@example.com')",
    )
    .await
    .unwrap();
    raw(
        &db,
        "UPDATE allowed_users SET updated_at = 5 WHERE email = 'sql@example.com'",
    )
    .await
    .unwrap();
    raw(
        &db,
        "UPDATE allowed_users SET status = 'suspended' WHERE email = 'sql@example.com'",
    )
    .await
    .unwrap();
    let user = store
        .user(&email("sql@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, Status::Suspended);
    assert!(user.updated_at > 5, "trigger did not touch updated_at");
}

#[tokio::test]
async fn domains_add_remove_list() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let d = Domain::parse("Example.com").unwrap();
    assert!(store.add_domain(&d).await.unwrap());
    assert!(!store.add_domain(&d).await.unwrap());
    store
        .add_domain(&Domain::parse("a.example").unwrap())
        .await
        .unwrap();
    let listed: Vec<String> = store
        .domains()
        .await
        .unwrap()
        .iter()
        .map(|(d, _)| d.to_string())
        .collect();
    assert_eq!(listed, ["a.example", "example.com"]);
    assert!(store.remove_domain(&d).await.unwrap());
    assert!(!store.remove_domain(&d).await.unwrap());
}

#[tokio::test]
async fn unreachable_database_is_reported_as_unavailable() {
    let mut settings = support::settings_with(&[]);
    settings.database.url = match TestDb::new().await.is_postgres() {
        true => "postgres://nobody@127.0.0.1:1/none".into(),
        false => "sqlite:///nonexistent-dir/x/broker.db?mode=rwc".into(),
    };
    match Store::connect(&settings.database).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

async fn raw(db: &TestDb, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
    conn.execute(sql).await.map(drop)
}

#[tokio::test]
async fn expired_logins_are_purged_and_codes_kept_a_day_for_replay_detection() {
    use mcp_auth_broker::store::{AuthCode, AuthRequest};
    let db = TestDb::new().await;
    let store = db.store().await;
    let now = mcp_auth_broker::store::now();
    let request = |id: &str, expires_at| AuthRequest {
        id: id.into(),
        browser_hash: "b".into(),
        client_id: "c".into(),
        redirect_uri: "https://a.example/cb".into(),
        state: None,
        code_challenge: "x".into(),
        scope: "mcp:tools".into(),
        resource: "r".into(),
        upstream_id: "dev".into(),
        upstream_nonce: "n".into(),
        upstream_verifier: "v".into(),
        user_id: None,
        csrf_hash: None,
        created_at: now - 100,
        expires_at,
    };
    store
        .insert_auth_request(&request("old", now - 4000))
        .await
        .unwrap();
    store
        .insert_auth_request(&request("late", now - 10))
        .await
        .unwrap();
    store
        .insert_auth_request(&request("live", now + 600))
        .await
        .unwrap();
    let code = |hash: &str, expires_at| AuthCode {
        code_hash: hash.into(),
        client_id: "c".into(),
        redirect_uri: "https://a.example/cb".into(),
        code_challenge: "x".into(),
        scope: "s".into(),
        resource: "r".into(),
        user_id: "u".into(),
        expires_at,
        used_at: None,
        refresh_family_id: None,
        access_jti: None,
        access_expires_at: None,
    };
    store
        .insert_auth_code(&code("recent", now - 60), now - 120)
        .await
        .unwrap();
    store
        .insert_auth_code(&code("ancient", now - 2 * 86_400), now - 2 * 86_400)
        .await
        .unwrap();

    store.purge_expired(now, 90 * 86_400, 3600).await.unwrap();
    assert!(store.auth_request("live").await.unwrap().is_some());
    assert!(
        store.auth_request("late").await.unwrap().is_some(),
        "kept an hour past expiry, so the login can be restarted"
    );
    assert!(store.auth_request("old").await.unwrap().is_none());
    assert!(
        store.auth_code("recent").await.unwrap().is_some(),
        "kept for replay detection"
    );
    assert!(store.auth_code("ancient").await.unwrap().is_none());
}

#[tokio::test]
async fn a_batch_of_audit_entries_is_stored_whole_whatever_its_size() {
    use mcp_auth_broker::store::AuditEntry;
    let db = TestDb::new().await;
    let store = db.store().await;
    // 128 + 128 + 32 + 8 + 4 + 1 rows: every statement size but the middle ones.
    let entries: Vec<AuditEntry> = (0..301)
        .map(|i| AuditEntry {
            at: 1_000 + i,
            event: "tool_called".into(),
            email: Some(format!("person{i}@example.com")),
            client_id: (i % 2 == 0).then(|| format!("client-{i}")),
            detail: serde_json::json!({ "tool": "whoami", "n": i }),
            ip: None,
        })
        .collect();
    store.audit_batch(&entries).await.unwrap();
    let later: Vec<AuditEntry> = entries[..3]
        .iter()
        .map(|e| AuditEntry {
            at: e.at + 10_000,
            ..e.clone()
        })
        .collect();
    store.audit_batch(&later).await.unwrap();
    let stored = store.audit_since(0, None, 1_000).await.unwrap();
    assert_eq!(stored.len(), 304);
    for (i, e) in stored.iter().take(301).enumerate() {
        let i = i as i64;
        assert_eq!(e.at, 1_000 + i);
        assert_eq!(
            e.email.as_deref(),
            Some(format!("person{i}@example.com").as_str())
        );
        assert_eq!(e.client_id, (i % 2 == 0).then(|| format!("client-{i}")));
        assert_eq!(e.detail["n"], i);
    }
}
