//! The allowlist CLI as an admin runs it: the built binary, a config file, a
//! database of its own, and exit statuses scripts rely on.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use support::{broker_binary, write, TestDb};

struct Cli {
    _db: TestDb,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Cli {
    async fn new() -> Cli {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "broker.toml",
            &format!("[database]\nurl = \"{}\"\n", db.url),
        );
        Cli {
            _db: db,
            dir,
            config,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        run_with(&["--config", self.config.to_str().unwrap()], args, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("--json output parses")
    }

    fn file(&self, name: &str, text: &str) -> String {
        write(self.dir.path(), name, text).display().to_string()
    }
}

fn run_with(before: &[&str], args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(broker_binary())
        .args(before)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the broker binary")
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn emails(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn add_list_suspend_activate_remove() {
    let cli = Cli::new().await;
    assert_eq!(
        cli.ok(&[
            "users",
            "add",
            " Alice@Example.COM ",
            "--name",
            "Alice A",
            "--role",
            "admin"
        ])
        .trim(),
        "added alice@example.com (admin)"
    );
    cli.ok(&["users", "add", "bob@example.com"]);

    let table = cli.ok(&["users", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("EMAIL"), "{table}");
    assert!(
        lines[1].starts_with("alice@example.com  Alice A  admin  active"),
        "{table}"
    );
    let status_col = lines[0].find("STATUS").unwrap();
    assert_eq!(
        &lines[2][status_col..status_col + 6],
        "active",
        "columns aligned:\n{table}"
    );

    assert_eq!(
        cli.ok(&["users", "suspend", "BOB@example.com"]).trim(),
        "bob@example.com is now suspended"
    );
    let list = cli.json(&["users", "list", "--json"]);
    assert_eq!(emails(&list), ["alice@example.com", "bob@example.com"]);
    assert_eq!(list[0]["role"], "admin");
    assert_eq!(list[0]["name"], "Alice A");
    assert_eq!(list[1]["status"], "suspended");
    assert!(list[1]["user_id"].as_str().unwrap().len() == 36);

    cli.ok(&["users", "activate", "bob@example.com"]);
    assert_eq!(
        cli.json(&["users", "list", "--json"])[1]["status"],
        "active"
    );
    cli.ok(&["users", "remove", "bob@example.com"]);
    assert_eq!(
        emails(&cli.json(&["users", "list", "--json"])),
        ["alice@example.com"]
    );
}

#[tokio::test]
async fn exit_statuses() {
    let cli = Cli::new().await;
    for args in [
        &["users", "remove", "nobody@example.com"][..],
        &["users", "suspend", "nobody@example.com"],
        &["users", "activate", "nobody@example.com"],
        &["domains", "remove", "example.com"],
    ] {
        let out = cli.run(args);
        assert_eq!(code(&out), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("is not"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for args in [
        &["users", "add", "not-an-email"][..],
        &["users", "add", "a@example.com", "--role", "root"],
        &["users", "remove", "@example.com"],
        &["domains", "add", "localhost"],
        &["users", "import", "/nonexistent/file.csv"],
        &["users", "frobnicate"],
    ] {
        let out = cli.run(args);
        assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = cli.run(&["users", "add", "not-an-email"]);
    assert_eq!(
        stderr(&out).trim(),
        "error: \"not-an-email\" is not an email address (no @)"
    );
}

#[tokio::test]
async fn unreachable_database_exits_3() {
    for url in [
        "postgres://nobody@127.0.0.1:1/none",
        "sqlite:///nonexistent-dir/sub/broker.db?mode=rwc",
    ] {
        let out = run_with(
            &["users", "list"],
            &[],
            &[
                ("BROKER__DATABASE__URL", url),
                ("BROKER__DATABASE__CONNECT_TIMEOUT", "1s"),
            ],
        );
        assert_eq!(code(&out), Some(3), "{url}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: database unavailable"),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn import_with_a_bad_row_applies_nothing() {
    let cli = Cli::new().await;
    cli.ok(&["users", "add", "keep@example.com", "--name", "Keep"]);
    let csv = cli.file("bad.csv", "email,name,role\nnew@example.com,New,user\nnot-an-email,Bad,user\nkeep@example.com,Changed,admin\n");
    let out = cli.run(&["users", "import", &csv]);
    assert_eq!(code(&out), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 3:") && err.contains("nothing was applied"),
        "{err}"
    );
    let list = cli.json(&["users", "list", "--json"]);
    assert_eq!(emails(&list), ["keep@example.com"]);
    assert_eq!(list[0]["name"], "Keep");
}

#[tokio::test]
async fn import_reports_and_export_round_trips() {
    let cli = Cli::new().await;
    cli.ok(&["users", "add", "old@example.com", "--name", "Old"]);
    cli.ok(&["users", "add", "same@example.com", "--name", "Same"]);
    let csv = cli.file("people.csv", "email,name,role\nNew@Example.com,\"New, Person\",admin\nold@example.com,Older,\nsame@example.com,Same,user\n");
    let out = cli.ok(&["users", "import", &csv]);
    assert!(
        out.trim().ends_with("1 added, 1 updated, 1 unchanged"),
        "{out}"
    );

    cli.ok(&["users", "suspend", "old@example.com"]);
    let exported = cli.ok(&["users", "export"]);
    assert_eq!(
        exported.trim(),
        "email,name,role,status\nnew@example.com,\"New, Person\",admin,active\nold@example.com,Older,user,suspended\nsame@example.com,Same,user,active"
    );
    assert_eq!(cli.ok(&["users", "export", "--csv"]), exported);
    let backup = cli.file("backup.csv", &exported);
    let out = cli.ok(&["users", "import", &backup]);
    assert!(
        out.trim().ends_with("0 added, 0 updated, 3 unchanged"),
        "{out}"
    );

    let json = cli.json(&["users", "export", "--json"]);
    assert_eq!(
        emails(&json),
        ["new@example.com", "old@example.com", "same@example.com"]
    );
    assert_eq!(
        code(&cli.run(&["users", "export", "--json", "--csv"])),
        Some(2)
    );
}

#[tokio::test]
async fn domains_commands() {
    let cli = Cli::new().await;
    cli.ok(&["domains", "add", "Example.COM"]);
    assert!(cli
        .ok(&["domains", "add", "example.com"])
        .contains("already allowed"));
    cli.ok(&["domains", "add", "corp.example"]);
    let list = cli.json(&["domains", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp.example", "example.com"]);
    assert!(cli.ok(&["domains", "list"]).starts_with("DOMAIN"));
    cli.ok(&["domains", "remove", "example.com"]);
    assert_eq!(
        cli.json(&["domains", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn config_from_env_variable_and_errors_exit_2() {
    let cli = Cli::new().await;
    let path = cli.config.to_str().unwrap();
    let out = run_with(
        &["users", "add", "env@example.com"],
        &[],
        &[("BROKER_CONFIG", path)],
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        emails(&cli.json(&["users", "list", "--json"])),
        ["env@example.com"]
    );

    let bad = cli.file("bad.toml", "[server]\npublic_url = \"http://broker.example.com\"\nbidn = \"x\"\n[database]\nmax_connections = 0\n");
    let out = run_with(&["--config", &bad, "users", "list"], &[], &[]);
    assert_eq!(code(&out), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "one line per problem:\n{err}");
    assert!(
        lines.iter().all(|l| l.starts_with("config error: ")),
        "{err}"
    );
    assert!(err.contains("unknown setting `server.bidn`"), "{err}");
    assert!(err.contains("server.public_url"), "{err}");
    assert!(err.contains("database.max_connections"), "{err}");
}

#[tokio::test]
async fn migrate_command() {
    let cli = Cli::new().await;
    let out = cli.ok(&["migrate"]);
    assert!(out.contains("is up to date"), "{out}");
}
