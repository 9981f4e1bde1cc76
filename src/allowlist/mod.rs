//! The allowlist's vocabulary: who may log in, and in which role.

mod import;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use import::{parse_csv, ImportError, ImportRow};

/// One row of `allowed_users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedUser {
    pub user_id: String,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    pub status: Status,
    pub provider: Option<String>,
    pub provider_subject: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

/// What to set on an allowlist entry; `None` keeps the current value (or the
/// default, for a new entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsert {
    Added,
    Updated,
    Unchanged,
}

/// An email address as the allowlist keys it: trimmed, lower-cased, and of
/// the plain `local@domain.tld` shape that upstream IdPs verify.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(format!("{raw:?} is not an email address (no @)"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !local_ok {
            return Err(format!("{raw:?} is not an email address (bad local part)"));
        }
        Domain::parse(domain)
            .map_err(|_| format!("{raw:?} is not an email address (bad domain)"))?;
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl FromStr for Email {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Email::parse(s)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS domain for `allowed_domains`: lower-case labels, at least two.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    pub fn parse(raw: &str) -> Result<Domain, String> {
        let domain = raw.trim().trim_start_matches('@').to_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if domain.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(format!("{raw:?} is not a domain name like example.com"));
        }
        Ok(Domain(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Domain {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Domain::parse(s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Role {
    #[default]
    User,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Active,
    Suspended,
}

/// The names used in the database and on the command line.
macro_rules! text_enum {
    ($ty:ty, $what:literal, $($variant:path => $text:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($variant),)+
                    other => Err(format!(concat!("{:?} is not a ", $what, " (use {})"), other, [$($text),+].join(" or "))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(Role, "role", Role::User => "user", Role::Admin => "admin");

/// Settings name roles as the command line does (`"root" is not a role …`).
impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(text: String) -> Result<Role, String> {
        text.parse()
    }
}
text_enum!(Status, "status", Status::Active => "active", Status::Suspended => "suspended");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(
            Email::parse("a.b+tag@sub.example.co.uk").unwrap().domain(),
            "sub.example.co.uk"
        );
    }

    #[test]
    fn invalid_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "alice@exa_mple.com",
            ".a@example.com",
            "a..b@example.com",
            "alice@-x.com",
            "alice@example..com",
            "\"quoted\"@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            Domain::parse(" @Example.COM ").unwrap().as_str(),
            "example.com"
        );
        for bad in ["com", "", "exa mple.com", "a..b", "-a.com"] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_and_statuses_round_trip() {
        assert_eq!("ADMIN".parse::<Role>().unwrap(), Role::Admin);
        assert_eq!(Role::User.to_string(), "user");
        assert_eq!("suspended".parse::<Status>().unwrap(), Status::Suspended);
        assert_eq!(
            "root".parse::<Role>().unwrap_err(),
            "\"root\" is not a role (use user or admin)"
        );
    }
}
