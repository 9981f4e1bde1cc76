//! Live revocation. Access tokens are validated locally, yet a revoked
//! token, a suspended or removed person, or a grant a person withdrew from a
//! client must stop working within `revocation.max_staleness` on every
//! replica, not at the token's expiry. Each replica keeps that in memory
//! (revoked `jti`s, every allowlist entry with its status, withdrawn grants)
//! and consults it on every bearer request without touching the database.
//!
//! Refreshing: every `revocation.poll_interval` a replica reads only the
//! rows stamped since what it last saw, per source (`revoked_jtis.revoked_at`,
//! `allowed_users.updated_at` — a trigger moves it on any UPDATE, plain SQL
//! included — `removed_users.removed_at`, tombstones a trigger leaves on
//! DELETE, and `revoked_grants.revoked_at`), minus `revocation.overlap` so a
//! late commit with an older stamp is not skipped.
//!
//! Failing closed: until a first load succeeds, and whenever the last
//! successful refresh began more than `max_staleness` ago (the database
//! unreachable or failing), the view vouches for nothing and bearer
//! requests get 503. The first refresh after such a gap reloads everything,
//! so nothing missed meanwhile (tombstones purged, say) can linger.
//!
//! A person the view has never seen (created since the last refresh, at
//! their first login) is looked up once in the database and remembered.

mod snapshot;

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use snapshot::{Refusal, Verdict};

use crate::config::RevocationSettings;
use crate::store::{self, ChangeCursors, Store, StoreError};
use crate::tokens::AccessClaims;
use snapshot::{Person, Snapshot};

impl crate::AppState {
    /// Revokes a refresh family and/or an access token (`jti`, `exp`): in
    /// the database, which every replica polls, and in this replica's view
    /// at once, so the caller's next request is already refused here.
    pub async fn revoke(
        &self,
        family_id: Option<&str>,
        access: Option<(&str, i64)>,
        at: i64,
    ) -> Result<(), StoreError> {
        self.store().revoke_grant(family_id, access, at).await?;
        if let Some((jti, expires_at)) = access {
            self.revocation().revoke_jti(jti, expires_at);
        }
        Ok(())
    }
}

/// Shared by every request of one replica.
pub struct RevocationView {
    snapshot: RwLock<Option<Snapshot>>,
    max_staleness: Duration,
    overlap: i64,
    access_token_ttl: i64,
}

/// The view cannot vouch for anything: not loaded yet, or too old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale;

impl RevocationView {
    pub fn new(settings: &RevocationSettings, access_token_ttl: Duration) -> RevocationView {
        RevocationView {
            snapshot: RwLock::new(None),
            max_staleness: settings.max_staleness.0,
            overlap: settings.overlap.0.as_secs() as i64,
            access_token_ttl: access_token_ttl.as_secs() as i64,
        }
    }

    /// Whether the signature's word on `claims` still stands.
    pub fn verdict(&self, claims: &AccessClaims) -> Result<Verdict, Stale> {
        let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        match snapshot.as_ref() {
            Some(s) if s.refreshed_at.elapsed() <= self.max_staleness => Ok(s.verdict(claims)),
            _ => Err(Stale),
        }
    }

    /// Asks the database about someone the view does not know yet, once.
    pub async fn learn_person(&self, store: &Store, user_id: &str) -> Result<(), StoreError> {
        let person = Person::of(store.user_by_id(user_id).await?);
        if let Some(s) = self.write().as_mut() {
            s.learn(user_id, person);
        }
        Ok(())
    }

    /// A revocation this replica made itself applies here at once; the
    /// others read it from the database.
    fn revoke_jti(&self, jti: &str, expires_at: i64) {
        if let Some(s) = self.write().as_mut() {
            s.revoke_jti(jti, expires_at);
        }
    }

    /// One poll: the changes since the cursors, or everything when the view
    /// is not loaded or was stale (a gap long enough to have missed rows).
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let started = Instant::now();
        let incremental = {
            let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
            snapshot
                .as_ref()
                .filter(|s| started.duration_since(s.refreshed_at) <= self.max_staleness)
                .map(|s| s.next_poll(self.overlap))
        };
        let changes = store
            .revocation_changes(&incremental.unwrap_or(ChangeCursors::EVERYTHING))
            .await?;
        let now = store::now();
        if incremental.is_some() {
            if let Some(s) = self.write().as_mut() {
                s.apply(changes, now);
                s.prune(now, self.access_token_ttl);
                s.refreshed_at = s.refreshed_at.max(started);
            }
        } else {
            // Built aside, swapped in whole: requests never see half a load.
            let mut fresh = Snapshot::empty(started);
            fresh.apply(changes, now);
            fresh.prune(now, self.access_token_ttl);
            *self.write() = Some(fresh);
        }
        Ok(())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Snapshot>> {
        self.snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
