//! Fair shares of a door's capacity between tenants: a slot is taken from the tenant's own share
//! first, and only then from the whole, so one tenant's slow or many transfers hold at most
//! `per_tenant` of the `total` slots, and every other tenant still finds one free. Used by the
//! feed and monitor polls (many subscriptions polled at once) and by the local stack's import
//! consumer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ids::TenantId;

pub struct FairShare {
    total: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _tenant: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl FairShare {
    pub fn new(total: usize, per_tenant: usize) -> Self {
        let total = total.max(1);
        FairShare { total: Arc::new(Semaphore::new(total)), per_tenant: per_tenant.clamp(1, total), tenants: Mutex::new(HashMap::new()) }
    }

    fn share(&self, tenant: &TenantId) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(tenants.entry(tenant.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))))
    }

    /// Waits for a slot for `tenant`: its own share first (while it waits there it holds none of
    /// the whole), then the whole, each first come first served.
    pub async fn slot(&self, tenant: &TenantId) -> Slot {
        let own = self.share(tenant).acquire_owned().await;
        let total = Arc::clone(&self.total).acquire_owned().await;
        match (own, total) {
            (Ok(own), Ok(total)) => Slot { _tenant: own, _total: total },
            _ => unreachable!("a fair share's semaphores are never closed"),
        }
    }

    /// A slot for `tenant` now, if its share and the whole both have one free.
    pub fn try_slot(&self, tenant: &TenantId) -> Option<Slot> {
        let own = self.share(tenant).try_acquire_owned().ok()?;
        let total = Arc::clone(&self.total).try_acquire_owned().ok()?;
        Some(Slot { _tenant: own, _total: total })
    }

    /// Whether any slot of the whole is free.
    pub fn has_room(&self) -> bool {
        self.total.available_permits() > 0
    }
}

/// Runs `poll` on every item, [`CONCURRENT_POLLS`] at once and at most
/// [`CONCURRENT_POLLS_PER_TENANT`] of one tenant's: how the feed and monitor polls go through
/// their subscriptions.
pub async fn poll_each<T, F, Fut>(items: Vec<T>, tenant_of: impl Fn(&T) -> TenantId, poll: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let share = FairShare::new(CONCURRENT_POLLS, CONCURRENT_POLLS_PER_TENANT);
    let polls = items.into_iter().map(|item| {
        let (share, tenant, poll) = (&share, tenant_of(&item), &poll);
        async move {
            let _slot = share.slot(&tenant).await;
            poll(item).await;
        }
    });
    futures_util::future::join_all(polls).await;
}

/// Subscriptions (feeds, monitors) polled at once, and at most this many of one tenant's: a
/// tenant's slow subscriptions hold their own share, never another tenant's turn.
pub const CONCURRENT_POLLS: usize = 16;
pub const CONCURRENT_POLLS_PER_TENANT: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_tenant_holds_at_most_its_share_and_another_still_finds_a_slot() {
        let share = FairShare::new(3, 2);
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        let held: Vec<Slot> = [share.try_slot(&acme), share.try_slot(&acme)].into_iter().flatten().collect();
        assert_eq!(held.len(), 2);
        assert!(share.try_slot(&acme).is_none(), "a third slot is over acme's share");
        let theirs = share.try_slot(&globex).expect("globex finds the slot acme may not take");
        assert!(share.try_slot(&globex).is_none() && !share.has_room(), "the whole is taken");
        drop(theirs);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(1), share.slot(&globex)).await;
        assert!(waited.is_ok(), "a slot given back is taken by the one waiting");
    }
}
