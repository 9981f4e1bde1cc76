//! The SQL that README.md tells admins to paste works, on both engines.

mod support;

use mcp_auth_broker::allowlist::{Email, Role, Status};
use sqlx::{Connection, Executor};
use support::TestDb;

fn readme_sql_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    readme
        .split("```sql\n")
        .skip(1)
        .map(|rest| {
            let block = rest.split("```").next().unwrap();
            block
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn readme_sql_manages_the_allowlist() {
    let blocks = readme_sql_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "README has the add block and the remove block"
    );
    let db = TestDb::new().await;
    let store = db.store().await;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let alice = Email::parse("alice@example.com").unwrap();

    for statement in &blocks[0] {
        conn.fetch_all(statement.as_str())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let user = store.user(&alice).await.unwrap().expect("inserted by SQL");
    assert_eq!(user.role, Role::User);
    assert_eq!(user.status, Status::Active);
    assert_eq!(user.name.as_deref(), Some("Alice E."));
    assert!(
        uuid::Uuid::parse_str(&user.user_id).is_ok(),
        "default user_id is a uuid: {}",
        user.user_id
    );
    assert!(user.created_at > 1_700_000_000);
    assert_eq!(store.domains().await.unwrap().len(), 1);

    for statement in &blocks[1] {
        conn.execute(statement.as_str())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    assert!(store.user(&alice).await.unwrap().is_none());
    assert!(store.domains().await.unwrap().is_empty());
}
