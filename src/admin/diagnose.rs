//! `config check` and `doctor`: is this configuration valid, what does it
//! amount to, and does the world around the broker answer.

use serde_json::Value;

use super::AdminError;
use crate::config::Settings;
use crate::store::{redact, Store};
use crate::upstream::Upstreams;

/// Keys whose values are never printed.
const SECRETS: [&str; 5] = [
    "client_secret",
    "hs256_secret",
    "key_encryption_secret",
    "initial_access_token",
    "secret",
];

/// The effective settings (defaults, file and environment merged) as TOML,
/// secrets masked; reaching here means they are valid.
pub fn config_check(settings: &Settings) -> Result<String, AdminError> {
    let mut value = serde_json::to_value(settings)
        .map_err(|e| AdminError::BadInput(format!("cannot show the settings: {e}")))?;
    if let Some(url) = value.pointer_mut("/database/url") {
        *url = Value::String(redact(url.as_str().unwrap_or_default()));
    }
    mask(&mut value);
    let text = toml::to_string_pretty(&value)
        .map_err(|e| AdminError::BadInput(format!("cannot show the settings: {e}")))?;
    Ok(format!(
        "# The configuration is valid. Effective settings, secrets masked:\n\n{text}"
    ))
}

/// Secrets become "********"; TOML has no null, so unset options go.
fn mask(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            for (key, v) in fields.iter_mut() {
                if SECRETS.contains(&key.as_str()) && v.is_string() {
                    *v = Value::String("********".into());
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// One line per check; any failure makes the command fail (exit 1).
pub async fn doctor(settings: &Settings) -> Result<String, AdminError> {
    let mut lines = Vec::new();
    let mut failed = false;
    let mut report = |ok: bool, text: String| {
        failed |= !ok;
        lines.push(format!("{}  {text}", if ok { "ok  " } else { "FAIL" }));
    };

    let shown = redact(&settings.database.url);
    match Store::connect(&settings.database).await {
        Ok(store) => {
            match store.pending_migrations().await {
                Ok(0) => report(true, format!("database {shown}: reachable, migrations up to date")),
                Ok(n) => report(false, format!("database {shown}: {n} migrations not applied (run `mcp-auth-broker migrate`)")),
                Err(e) => report(false, format!("database {shown}: {e}")),
            }
            store.close().await;
        }
        Err(e) => report(false, format!("database {shown}: {e}")),
    }

    match Upstreams::new(&settings.upstreams) {
        Err(e) => report(false, format!("upstreams: {e}")),
        Ok(upstreams) if upstreams.all().is_empty() => report(
            false,
            "no [[upstreams]] configured: nobody can sign in (or run `serve --dev` locally)".into(),
        ),
        Ok(upstreams) => {
            for upstream in upstreams.all() {
                let id = &upstream.settings.id;
                let issuer = &upstream.settings.issuer;
                match upstream.check().await {
                    Ok(health) => {
                        let skew = health.clock_skew.unwrap_or(0);
                        report(
                            true,
                            format!(
                                "upstream {id} ({issuer}): discovery and {} signing keys",
                                health.signing_keys
                            ),
                        );
                        report(
                            skew.abs() <= 60,
                            format!("clock: {skew:+} s against upstream {id} (tokens tolerate about a minute)"),
                        );
                    }
                    Err(e) => report(false, format!("upstream {id} ({issuer}): {e}")),
                }
            }
        }
    }

    let health = format!("{}/healthz", settings.issuer());
    let answered = openidconnect::reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string());
    match answered {
        Ok(client) => match client.get(&health).send().await {
            Ok(r) if r.status().is_success() => {
                report(true, format!("public URL: {health} answers"))
            }
            Ok(r) => report(
                false,
                format!("public URL: {health} answered HTTP {}", r.status()),
            ),
            Err(e) => report(
                false,
                format!(
                    "public URL: {health} is not reachable from here ({})",
                    e.without_url()
                ),
            ),
        },
        Err(e) => report(false, format!("public URL: {e}")),
    }

    let text = lines.join("\n");
    if failed {
        Err(AdminError::CheckFailed(text))
    } else {
        Ok(text)
    }
}
