//! The `mcp-auth-broker` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mcp_auth_broker::admin::clients::Selection;
use mcp_auth_broker::admin::{self, users::ExportFormat, AdminError};
use mcp_auth_broker::allowlist::{Email, Role, Status, UserChange};
use mcp_auth_broker::config::{Settings, Sources};
use mcp_auth_broker::store::{redact, Store};
use mcp_auth_broker::tokens::KeyError;
use mcp_auth_broker::StartError;
use mcp_auth_broker::{server, telemetry};

// glibc's malloc was a sixth of the CPU of an authenticated /mcp call,
// much of it consolidating freed chunks (BENCHMARKS.md has the profile).
// Without transparent huge pages (`no_thp`), which would take the idle RSS
// from 16 MiB to 30.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEV_USER: &str = "dev@example.com";

#[derive(Parser)]
#[command(
    name = "mcp-auth-broker",
    version,
    about = "OAuth 2.1 authorization broker for MCP servers"
)]
struct Cli {
    /// Settings file layered over the built-in defaults (env BROKER__* wins over it).
    #[arg(long, global = true, env = "BROKER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Local development: enable the built-in OpenID provider under
        /// /dev-idp and seed dev@example.com into the allowlist (loopback only).
        #[arg(long)]
        dev: bool,
    },
    /// Check the configuration and print the effective settings (secrets masked).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the database, each upstream's discovery and keys, the clock,
    /// and that the public URL answers; exit 1 if anything fails.
    Doctor,
    #[command(flatten)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate (errors exit 2) and print the effective settings.
    Check,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the allowlist of people.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage allowed email domains.
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// See and revoke the clients people approved.
    #[command(subcommand)]
    Consents(ConsentsCommand),
    /// See, disable and delete OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Revoke tokens in bulk.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Show every client.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Refuse a client from now on and revoke the tokens it holds.
    Disable { id: String },
    /// Accept a disabled client again.
    Enable { id: String },
    /// Delete a client and revoke the tokens it holds.
    Delete { id: String },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Revoke the grants (refresh and access tokens, approvals) of one
    /// person, of one client, or of everyone.
    #[command(group = clap::ArgGroup::new("whose").required(true).multiple(false))]
    Revoke {
        #[arg(long, value_name = "EMAIL", group = "whose")]
        user: Option<String>,
        #[arg(long, value_name = "ID", group = "whose")]
        client: Option<String>,
        #[arg(long, group = "whose")]
        all: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print recent audit entries, oldest first.
    Tail {
        /// Only this person's entries.
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// How far back, e.g. 15m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConsentsCommand {
    /// Show the clients a person approved.
    List {
        #[arg(long, value_name = "EMAIL")]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Take back a person's approval of one client (or of all), revoking
    /// the tokens the client holds for them.
    Revoke {
        #[arg(long, value_name = "EMAIL")]
        user: String,
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key; new tokens use it, old tokens stay valid.
    Rotate,
    /// Show the signing keys in force.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Take a key out of service now (e.g. it leaked); its tokens stop working.
    Retire { kid: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a person (or update the name/role of one already there).
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// user or admin
        #[arg(long)]
        role: Option<Role>,
    },
    /// Remove a person from the allowlist.
    Remove { email: String },
    /// Keep the entry but refuse logins and tokens.
    Suspend { email: String },
    /// Lift a suspension.
    Activate { email: String },
    /// Show the allowlist.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Upsert people from a CSV file of email,name,role[,status], all or nothing.
    Import { file: PathBuf },
    /// Print the allowlist (CSV by default, readable by `users import`).
    Export(ExportArgs),
}

#[derive(Args)]
#[group(multiple = false)]
struct ExportArgs {
    #[arg(long)]
    json: bool,
    #[arg(long)]
    csv: bool,
}

#[derive(Subcommand)]
enum DomainsCommand {
    /// Allow every verified email of DOMAIN.
    Add { domain: String },
    /// Stop allowing DOMAIN (people already added stay).
    Remove { domain: String },
    /// Show allowed domains.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&Sources::from_process(cli.config.as_deref())) {
        Ok(settings) => settings,
        Err(problems) => {
            for line in &problems.0 {
                eprintln!("config error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(output) => {
            if !output.is_empty() {
                println!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(AdminError::CheckFailed(report)) => {
            println!("{report}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<String, AdminError> {
    match command {
        Command::Serve { dev } => serve(settings, dev).await,
        Command::Config(ConfigCommand::Check) => admin::diagnose::config_check(&settings),
        Command::Doctor => admin::diagnose::doctor(&settings).await,
        Command::Admin(command) => admin(command, settings).await,
    }
}

async fn admin(command: AdminCommand, settings: Settings) -> Result<String, AdminError> {
    let store = Store::connect(&settings.database).await?;
    if settings.database.auto_migrate || matches!(command, AdminCommand::Migrate) {
        store.migrate().await?;
    }
    let output = match command {
        AdminCommand::Migrate => Ok(format!(
            "database {} is up to date",
            redact(&settings.database.url)
        )),
        AdminCommand::Users(command) => users(&store, command).await,
        AdminCommand::Domains(command) => domains(&store, command).await,
        AdminCommand::Keys(KeysCommand::Rotate) => admin::keys::rotate(&store, &settings).await,
        AdminCommand::Keys(KeysCommand::List { json }) => admin::keys::list(&store, json).await,
        AdminCommand::Keys(KeysCommand::Retire { kid }) => admin::keys::retire(&store, &kid).await,
        AdminCommand::Clients(command) => clients(&store, command).await,
        AdminCommand::Tokens(TokensCommand::Revoke { user, client, all }) => {
            let selection = match (&user, &client, all) {
                (Some(user), _, _) => Selection::User(user),
                (_, Some(client), _) => Selection::Client(client),
                _ => Selection::All,
            };
            admin::clients::revoke_tokens(&store, selection).await
        }
        AdminCommand::Audit(AuditCommand::Tail {
            user,
            since,
            limit,
            json,
        }) => admin::audit::tail(&store, user.as_deref(), since, limit, json).await,
        AdminCommand::Consents(ConsentsCommand::List { user, json }) => {
            admin::consents::list(&store, &user, json).await
        }
        AdminCommand::Consents(ConsentsCommand::Revoke { user, client }) => {
            admin::consents::revoke(&store, &user, client.as_deref()).await
        }
    };
    store.close().await;
    output
}

async fn serve(mut settings: Settings, dev: bool) -> Result<String, AdminError> {
    telemetry::init(&settings.log);
    if dev {
        settings
            .enable_dev()
            .map_err(|e| AdminError::BadInput(e.to_string()))?;
        seed_dev_user(&settings).await?;
    }
    let addr = settings.bind_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AdminError::BadInput(format!("cannot listen on {addr}: {e}")))?;
    tracing::info!(%addr, issuer = settings.issuer(), database = %redact(&settings.database.url), "listening");
    server::serve(settings, listener, server::shutdown_signal())
        .await
        .map_err(|e| match e {
            StartError::Store(e) | StartError::Keys(KeyError::Store(e)) => AdminError::from(e),
            other => AdminError::BadInput(other.to_string()),
        })?;
    Ok(String::new())
}

async fn seed_dev_user(settings: &Settings) -> Result<(), AdminError> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    let email = Email::parse(DEV_USER).map_err(AdminError::BadInput)?;
    let change = UserChange {
        role: Some(Role::Admin),
        ..UserChange::default()
    };
    store.upsert_user(&email, &change).await?;
    store.close().await;
    let issuer = settings.issuer();
    eprintln!(
        "\ndevelopment mode: sign in as {DEV_USER} (or any email you add with `users add`)\n\
         MCP endpoint:   {issuer}/mcp\n\
         try it with:    npx @modelcontextprotocol/inspector   (then connect to {issuer}/mcp)\n"
    );
    Ok(())
}

async fn clients(store: &Store, command: ClientsCommand) -> Result<String, AdminError> {
    use admin::clients;
    match command {
        ClientsCommand::List { json } => clients::list(store, json).await,
        ClientsCommand::Show { id, json } => clients::show(store, &id, json).await,
        ClientsCommand::Disable { id } => clients::disable(store, &id).await,
        ClientsCommand::Enable { id } => clients::enable(store, &id).await,
        ClientsCommand::Delete { id } => clients::delete(store, &id).await,
    }
}

async fn users(store: &Store, command: UsersCommand) -> Result<String, AdminError> {
    use admin::users;
    match command {
        UsersCommand::Add { email, name, role } => users::add(store, &email, name, role).await,
        UsersCommand::Remove { email } => users::remove(store, &email).await,
        UsersCommand::Suspend { email } => {
            users::set_status(store, &email, Status::Suspended).await
        }
        UsersCommand::Activate { email } => users::set_status(store, &email, Status::Active).await,
        UsersCommand::List { json } => users::list(store, json).await,
        UsersCommand::Import { file } => users::import(store, &file).await,
        UsersCommand::Export(args) => {
            let format = if args.json {
                ExportFormat::Json
            } else {
                ExportFormat::Csv
            };
            users::export(store, format).await
        }
    }
}

async fn domains(store: &Store, command: DomainsCommand) -> Result<String, AdminError> {
    use admin::domains;
    match command {
        DomainsCommand::Add { domain } => domains::add(store, &domain).await,
        DomainsCommand::Remove { domain } => domains::remove(store, &domain).await,
        DomainsCommand::List { json } => domains::list(store, json).await,
    }
}
