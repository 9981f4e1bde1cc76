//! What each kind of provider's ID token must say before the broker believes
//! an email: Google's `hd`, Entra's tenants and its missing `email_verified`
//! (the "nOAuth" takeover: a tenant admin can set any `email`), Cognito's
//! string booleans. One function per rule set, free of HTTP.

use openidconnect::AdditionalClaims;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UpstreamIdentity;
use crate::config::{UpstreamKind, UpstreamSettings};

/// ID-token claims beyond the standard ones that some providers send.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderClaims {
    /// Google: the Workspace domain of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
    /// Entra: tenant and object id (the stable person key is `tid`+`oid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Entra optional claim: the email's domain is verified by its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_edov: Option<Value>,
}

impl AdditionalClaims for ProviderClaims {}

/// The claims the rules look at, however the provider delivered them.
#[derive(Debug, Default, Clone)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub extra: ProviderClaims,
}

/// The identity `claims` vouch for under `upstream`'s rules, or why the
/// login is refused outright (a wrong tenant or Workspace domain). An email
/// the rules do not trust comes back unverified, for the allowlist gate to
/// refuse with its own message.
pub fn vouch(upstream: &UpstreamSettings, claims: Claims) -> Result<UpstreamIdentity, String> {
    let mut identity = UpstreamIdentity {
        subject: claims.subject.clone(),
        email: claims.email.clone(),
        email_verified: claims.email_verified.unwrap_or(false),
        name: claims.name.clone(),
    };
    match upstream.kind {
        UpstreamKind::Google => {
            if let Some(domain) = &upstream.hosted_domain {
                if claims.extra.hd.as_deref() != Some(domain.as_str()) {
                    return Err(format!(
                        "only {domain} accounts may sign in here, and this account is not one"
                    ));
                }
            }
        }
        UpstreamKind::Entra => entra(upstream, &claims, &mut identity)?,
        // Cognito's "true" strings are read as booleans by the claims parser.
        UpstreamKind::Cognito | UpstreamKind::Oidc | UpstreamKind::Dev => {}
    }
    Ok(identity)
}

fn entra(
    upstream: &UpstreamSettings,
    claims: &Claims,
    identity: &mut UpstreamIdentity,
) -> Result<(), String> {
    let tid = claims
        .extra
        .tid
        .as_deref()
        .ok_or("the Microsoft ID token names no tenant (tid)")?;
    if upstream.is_multi_tenant() {
        if !upstream.allowed_tenants.iter().any(|t| t == tid) {
            return Err(format!(
                "accounts of the Microsoft tenant {tid} may not sign in here"
            ));
        }
        // Verification skipped the issuer (discovery's is a {tenantid}
        // template), so it is checked here: it must be the tenant's own.
        if claims.issuer != tenant_issuer(upstream, tid) {
            return Err(format!(
                "the ID token's issuer {} is not tenant {tid}'s",
                claims.issuer
            ));
        }
    }
    if let Some(oid) = &claims.extra.oid {
        identity.subject = format!("{tid}:{oid}");
    }
    if upstream.email_claim.as_deref() == Some("preferred_username") {
        identity.email = claims.preferred_username.clone();
        identity.email_verified = identity.email.is_some();
    } else {
        identity.email_verified = claims.extra.xms_edov.as_ref().is_some_and(truthy);
    }
    Ok(())
}

/// The issuer a token of tenant `tid` carries: the configured issuer with
/// `organizations`/`common` replaced by the tenant id.
pub fn tenant_issuer(upstream: &UpstreamSettings, tid: &str) -> String {
    let tenant = upstream.tenant.as_deref().unwrap_or_default();
    upstream
        .issuer
        .replacen(&format!("/{tenant}/"), &format!("/{tid}/"), 1)
}

/// Entra sends optional boolean claims as `true`, `"true"` or `1`.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s == "1",
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream(kind: UpstreamKind) -> UpstreamSettings {
        UpstreamSettings {
            id: "u".into(),
            kind,
            issuer: "https://login.microsoftonline.com/organizations/v2.0".into(),
            ..UpstreamSettings::blank()
        }
    }

    fn entra_claims(tid: &str, edov: Option<Value>) -> Claims {
        Claims {
            issuer: format!("https://login.microsoftonline.com/{tid}/v2.0"),
            subject: "pairwise".into(),
            email: Some("ann@contoso.example".into()),
            preferred_username: Some("ann@contoso.onmicrosoft.example".into()),
            extra: ProviderClaims {
                tid: Some(tid.into()),
                oid: Some("oid-1".into()),
                xms_edov: edov,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn google_hosted_domain_must_match() {
        let mut google = upstream(UpstreamKind::Google);
        google.hosted_domain = Some("corp.example".into());
        let mut claims = Claims {
            email: Some("a@corp.example".into()),
            email_verified: Some(true),
            ..Default::default()
        };
        assert!(vouch(&google, claims.clone())
            .unwrap_err()
            .contains("corp.example"));
        claims.extra.hd = Some("other.example".into());
        assert!(vouch(&google, claims.clone()).is_err());
        claims.extra.hd = Some("corp.example".into());
        assert!(vouch(&google, claims).unwrap().email_verified);
    }

    #[test]
    fn entra_trusts_email_only_with_xms_edov() {
        let mut entra = upstream(UpstreamKind::Entra);
        entra.tenant = Some("organizations".into());
        entra.allowed_tenants = vec!["t1".into()];
        for (edov, verified) in [
            (None, false),
            (Some(json!(false)), false),
            (Some(json!(true)), true),
            (Some(json!("true")), true),
            (Some(json!(1)), true),
        ] {
            let id = vouch(&entra, entra_claims("t1", edov.clone())).unwrap();
            assert_eq!(id.email_verified, verified, "{edov:?}");
            assert_eq!(id.subject, "t1:oid-1");
        }
    }

    #[test]
    fn entra_multi_tenant_checks_tenant_and_issuer() {
        let mut entra = upstream(UpstreamKind::Entra);
        entra.tenant = Some("organizations".into());
        entra.allowed_tenants = vec!["t1".into()];
        let refused = vouch(&entra, entra_claims("t2", Some(json!(true)))).unwrap_err();
        assert!(refused.contains("t2"), "{refused}");
        let mut forged = entra_claims("t1", Some(json!(true)));
        forged.issuer = "https://login.microsoftonline.com/t2/v2.0".into();
        assert!(vouch(&entra, forged).unwrap_err().contains("issuer"));
        let mut no_tid = entra_claims("t1", Some(json!(true)));
        no_tid.extra.tid = None;
        assert!(vouch(&entra, no_tid).is_err());
    }

    #[test]
    fn entra_single_tenant_may_use_preferred_username() {
        let mut entra = upstream(UpstreamKind::Entra);
        entra.tenant = Some("t1".into());
        entra.issuer = "https://login.microsoftonline.com/t1/v2.0".into();
        entra.email_claim = Some("preferred_username".into());
        let id = vouch(&entra, entra_claims("t1", None)).unwrap();
        assert_eq!(id.email.as_deref(), Some("ann@contoso.onmicrosoft.example"));
        assert!(id.email_verified);
    }
}
