//! One replica's picture of what stops a validly signed token, and how a
//! batch of changes read from the database updates it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::allowlist::{AllowedUser, Status};
use crate::store::{ChangeCursors, Changes};
use crate::tokens::AccessClaims;

/// A revoked `jti` is kept this long past its token's `exp`: longer than the
/// leeway validation grants on `exp`, as the database's purge does.
const PAST_EXPIRY: i64 = 300;

/// What the view knows about one person.
#[derive(Debug, Clone)]
pub enum Person {
    Active(Arc<AllowedUser>),
    /// Suspended or removed from the allowlist.
    Inactive,
}

impl Person {
    /// The database's answer about someone: `None` when they have no row.
    pub fn of(row: Option<AllowedUser>) -> Person {
        match row {
            Some(user) if user.status == Status::Active => Person::Active(Arc::new(user)),
            _ => Person::Inactive,
        }
    }
}

/// Why a token's signature is not enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TokenRevoked,
    GrantRevoked,
    PersonInactive,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TokenRevoked => "the access token was revoked",
            Refusal::GrantRevoked => "the person withdrew this client's access",
            Refusal::PersonInactive => "the person is no longer allowed on this server",
        }
    }
}

/// The view's answer for one token.
#[derive(Debug)]
pub enum Verdict {
    Admit(Arc<AllowedUser>),
    Refuse(Refusal),
    /// The person has no entry yet (a row created since the last refresh,
    /// e.g. at their first login): the database must be asked.
    UnknownPerson,
}

pub struct Snapshot {
    /// When the refresh whose data this holds began: the data is at least
    /// that fresh.
    pub refreshed_at: Instant,
    /// Per source, the newest timestamp seen (never ahead of our clock).
    seen: ChangeCursors,
    /// `jti` → the token's `exp`.
    revoked_jtis: HashMap<String, i64>,
    /// `user_id` → person; every allowlist row, plus people found removed.
    people: HashMap<String, Person>,
    /// `user_id` → `client_id` → tokens issued at or before this are refused.
    revoked_grants: HashMap<String, HashMap<String, i64>>,
}

impl Snapshot {
    pub fn empty(refreshed_at: Instant) -> Snapshot {
        Snapshot {
            refreshed_at,
            seen: ChangeCursors::EVERYTHING,
            revoked_jtis: HashMap::new(),
            people: HashMap::new(),
            revoked_grants: HashMap::new(),
        }
    }

    /// The cursors of the next poll: `overlap` seconds behind what was seen,
    /// so a row committed late with an older stamp (a slow transaction,
    /// another host's clock) is still read. Re-reading is harmless: every
    /// change is applied as "set to", never "toggle".
    pub fn next_poll(&self, overlap: i64) -> ChangeCursors {
        let back = |seen: i64| seen.saturating_sub(overlap);
        ChangeCursors {
            revoked_jtis: back(self.seen.revoked_jtis),
            removed_users: back(self.seen.removed_users),
            users: back(self.seen.users),
            revoked_grants: back(self.seen.revoked_grants),
        }
    }

    /// Allocation-free apart from the `Arc` count: the hot path.
    pub fn verdict(&self, claims: &AccessClaims) -> Verdict {
        if self.revoked_jtis.contains_key(claims.jti.as_str()) {
            return Verdict::Refuse(Refusal::TokenRevoked);
        }
        let withdrawn = self
            .revoked_grants
            .get(claims.sub.as_str())
            .and_then(|clients| clients.get(claims.client_id.as_str()))
            .is_some_and(|&revoked_at| claims.iat <= revoked_at);
        if withdrawn {
            return Verdict::Refuse(Refusal::GrantRevoked);
        }
        match self.people.get(claims.sub.as_str()) {
            Some(Person::Active(user)) => Verdict::Admit(user.clone()),
            Some(Person::Inactive) => Verdict::Refuse(Refusal::PersonInactive),
            None => Verdict::UnknownPerson,
        }
    }

    /// What the database said about someone the view did not know. An
    /// entry a refresh made meanwhile is newer and wins.
    pub fn learn(&mut self, user_id: &str, person: Person) {
        self.people.entry(user_id.to_owned()).or_insert(person);
    }

    pub fn revoke_jti(&mut self, jti: &str, expires_at: i64) {
        self.revoked_jtis.insert(jti.to_owned(), expires_at);
    }

    /// Applies a poll's rows; `now` caps the cursors so a row stamped in
    /// the future cannot make later polls skip the present.
    pub fn apply(&mut self, changes: Changes, now: i64) {
        let seen = &mut self.seen;
        for row in changes.revoked_jtis {
            seen.revoked_jtis = seen.revoked_jtis.max(row.revoked_at.min(now));
            self.revoked_jtis.insert(row.jti, row.expires_at);
        }
        // Removals before rows: a row read after its tombstone was added back.
        for row in changes.removed_users {
            seen.removed_users = seen.removed_users.max(row.removed_at.min(now));
            self.people.insert(row.user_id, Person::Inactive);
        }
        for user in changes.users {
            seen.users = seen.users.max(user.updated_at.min(now));
            self.people
                .insert(user.user_id.clone(), Person::of(Some(user)));
        }
        for row in changes.revoked_grants {
            seen.revoked_grants = seen.revoked_grants.max(row.revoked_at.min(now));
            let line = self
                .revoked_grants
                .entry(row.user_id)
                .or_default()
                .entry(row.client_id)
                .or_insert(row.revoked_at);
            *line = (*line).max(row.revoked_at);
        }
    }

    /// Forgets what can no longer matter: revoked `jti`s of expired tokens,
    /// and grant revocations older than any unexpired token
    /// (`access_token_ttl`), as the database's purge does.
    pub fn prune(&mut self, now: i64, access_token_ttl: i64) {
        self.revoked_jtis
            .retain(|_, expires_at| *expires_at + PAST_EXPIRY >= now);
        self.revoked_grants.retain(|_, clients| {
            clients.retain(|_, revoked_at| *revoked_at + access_token_ttl + PAST_EXPIRY >= now);
            !clients.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::{Email, Role};
    use crate::store::{RemovedUser, RevokedGrant, RevokedJti};

    fn user(id: &str, status: Status, updated_at: i64) -> AllowedUser {
        AllowedUser {
            user_id: id.into(),
            email: Email::parse(&format!("{id}@example.com")).unwrap(),
            name: None,
            role: Role::User,
            status,
            provider: None,
            provider_subject: None,
            created_at: 0,
            updated_at,
            last_login_at: None,
        }
    }

    fn claims(sub: &str, client_id: &str, jti: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://broker.example".into(),
            sub: sub.into(),
            aud: "https://broker.example/mcp".into(),
            exp: iat + 3600,
            iat,
            nbf: iat,
            jti: jti.into(),
            client_id: client_id.into(),
            scope: "mcp:tools".into(),
            email: format!("{sub}@example.com"),
        }
    }

    fn refuse(verdict: Verdict) -> Option<Refusal> {
        match verdict {
            Verdict::Refuse(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn verdicts_follow_the_changes() {
        let mut s = Snapshot::empty(Instant::now());
        let c = claims("ann", "app", "j1", 1_000);
        assert!(matches!(s.verdict(&c), Verdict::UnknownPerson));
        s.apply(
            Changes {
                users: vec![user("ann", Status::Active, 1_000)],
                ..Changes::default()
            },
            2_000,
        );
        assert!(matches!(s.verdict(&c), Verdict::Admit(u) if u.user_id == "ann"));

        let grant = |at| RevokedGrant {
            user_id: "ann".into(),
            client_id: "app".into(),
            revoked_at: at,
        };
        s.apply(
            Changes {
                revoked_grants: vec![grant(1_000)],
                ..Changes::default()
            },
            2_000,
        );
        assert_eq!(refuse(s.verdict(&c)), Some(Refusal::GrantRevoked));
        assert!(
            matches!(
                s.verdict(&claims("ann", "app", "j2", 1_001)),
                Verdict::Admit(_)
            ),
            "a token issued after the revocation"
        );
        assert!(matches!(
            s.verdict(&claims("ann", "other", "j3", 1_000)),
            Verdict::Admit(_)
        ));
        // An overlapping re-read of an older line does not move it back.
        s.apply(
            Changes {
                revoked_grants: vec![grant(900)],
                ..Changes::default()
            },
            2_000,
        );
        assert_eq!(refuse(s.verdict(&c)), Some(Refusal::GrantRevoked));

        s.apply(
            Changes {
                revoked_jtis: vec![RevokedJti {
                    jti: "j2".into(),
                    expires_at: 5_000,
                    revoked_at: 1_500,
                }],
                ..Changes::default()
            },
            2_000,
        );
        assert_eq!(
            refuse(s.verdict(&claims("ann", "app", "j2", 1_001))),
            Some(Refusal::TokenRevoked)
        );
    }

    #[test]
    fn a_row_read_after_its_tombstone_was_added_back() {
        let mut s = Snapshot::empty(Instant::now());
        let removed = || RemovedUser {
            user_id: "bob".into(),
            removed_at: 1_000,
        };
        s.apply(
            Changes {
                removed_users: vec![removed()],
                users: vec![user("bob", Status::Active, 1_001)],
                ..Changes::default()
            },
            2_000,
        );
        assert!(matches!(
            s.verdict(&claims("bob", "app", "j", 1_500)),
            Verdict::Admit(_)
        ));
        s.apply(
            Changes {
                removed_users: vec![removed()],
                ..Changes::default()
            },
            2_000,
        );
        assert_eq!(
            refuse(s.verdict(&claims("bob", "app", "j", 1_500))),
            Some(Refusal::PersonInactive)
        );
        s.learn("bob", Person::of(Some(user("bob", Status::Active, 900))));
        assert_eq!(
            refuse(s.verdict(&claims("bob", "app", "j", 1_500))),
            Some(Refusal::PersonInactive),
            "a lookup that raced a refresh does not overwrite it"
        );
    }

    #[test]
    fn cursors_overlap_and_never_run_ahead_of_the_clock() {
        let mut s = Snapshot::empty(Instant::now());
        assert_eq!(s.next_poll(10), ChangeCursors::EVERYTHING);
        s.apply(
            Changes {
                users: vec![
                    user("a", Status::Active, 1_000),
                    user("b", Status::Suspended, 9_999),
                ],
                ..Changes::default()
            },
            1_200,
        );
        assert_eq!(s.next_poll(10).users, 1_190);
        assert_eq!(s.next_poll(10).revoked_jtis, i64::MIN);
    }

    #[test]
    fn pruning_keeps_what_can_still_matter() {
        let mut s = Snapshot::empty(Instant::now());
        s.revoke_jti("old", 1_000);
        s.revoke_jti("live", 5_000);
        s.apply(
            Changes {
                revoked_grants: vec![RevokedGrant {
                    user_id: "ann".into(),
                    client_id: "app".into(),
                    revoked_at: 1_000,
                }],
                ..Changes::default()
            },
            2_000,
        );
        s.prune(1_000 + PAST_EXPIRY, 3_600);
        assert_eq!(s.revoked_jtis.len(), 2);
        s.prune(1_001 + PAST_EXPIRY, 3_600);
        assert_eq!(s.revoked_jtis.len(), 1);
        assert_eq!(s.revoked_grants.len(), 1);
        s.prune(1_001 + 3_600 + PAST_EXPIRY, 3_600);
        assert!(s.revoked_grants.is_empty());
    }
}
