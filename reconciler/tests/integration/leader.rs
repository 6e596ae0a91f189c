//! The store's side of scale-out on real databases: idempotent deploy records of a commit,
//! writes fenced by the leader lock, and the `mcpctl_deploy` notification.

use std::sync::Arc;
use std::time::Duration;

use mcpctl_reconciler::leader::LeaderLock;
use mcpctl_reconciler::{plan, Backend, StoreError};

use super::common::{postgres, state, stores};
use super::{base_repo, meta};

#[tokio::test]
async fn deploy_records_of_one_commit_are_not_repeated_on_every_backend() {
    for (store, _guard) in stores().await {
        let backend = store.backend();
        let desired = state(&base_repo());
        let p = plan(&desired, &store.resources().await.unwrap(), "c1");
        let first = store.apply_commit(&p, &meta("c1"), None).await.unwrap();
        // The same commit again (a new leader that had not seen the row): refused, nothing written.
        let again = plan(&state(""), &[], "c1");
        match store.apply_commit(&again, &meta("c1"), None).await {
            Err(StoreError::AlreadyRecorded { id }) => assert_eq!(id, first.id, "{backend:?}"),
            other => panic!("{backend:?}: {other:?}"),
        }
        assert_eq!(store.record_unchanged(&meta("c1")).await.unwrap().id, first.id, "{backend:?}");
        let failed = store.record_failure(&meta("c2"), "bad").await.unwrap();
        assert_eq!(store.record_failure(&meta("c2"), "bad").await.unwrap().id, failed.id, "{backend:?}");
        // Another commit after it is recorded; a drift revert of the same revision is too.
        let rows = store.deploys(10).await.unwrap();
        assert_eq!(rows.iter().map(|d| d.revision.as_str()).collect::<Vec<_>>(), ["c2", "c1"], "{backend:?}");
        assert_eq!(store.resources().await.unwrap().len(), 5, "{backend:?}: the refused apply changed the store");
        store.apply(&plan(&desired, &store.resources().await.unwrap(), "c2"), &meta("c2"), &|_, _| {}).await.unwrap();
        assert_eq!(store.deploys(10).await.unwrap().len(), 3, "{backend:?}");
    }
}

#[tokio::test]
async fn a_fenced_store_commits_only_while_its_lock_is_held() {
    let Some(store) = postgres().await else { return };
    let mut first = LeaderLock::new(store.url()).unwrap();
    let mut second = LeaderLock::new(store.url()).unwrap();
    assert!(first.ensure().await.unwrap(), "a free lock is taken");
    assert!(!second.ensure().await.unwrap(), "a held lock is not");
    assert!(first.ensure().await.unwrap(), "the holder keeps it");
    let fenced = store.fenced(first.held_by());
    let desired = state(&base_repo());
    let p = plan(&desired, &fenced.resources().await.unwrap(), "c1");
    fenced.apply_commit(&p, &meta("c1"), None).await.unwrap();
    // The lock changes hands: the old holder's writes are refused and leave nothing.
    first.release().await;
    let mut taken = false;
    for _ in 0..50 {
        // The server ends the closed session a moment after the client leaves.
        taken = second.ensure().await.unwrap();
        if taken {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken, "released, the lock is taken by the standby");
    let p = plan(&state(""), &fenced.resources().await.unwrap(), "c2");
    assert!(matches!(fenced.apply_commit(&p, &meta("c2"), None).await, Err(StoreError::NotLeader)));
    assert!(matches!(fenced.record_failure(&meta("c3"), "x").await, Err(StoreError::NotLeader)));
    let rows = store.deploys(10).await.unwrap();
    assert_eq!(rows.iter().map(|d| d.revision.as_str()).collect::<Vec<_>>(), ["c1"]);
    assert_eq!(store.resources().await.unwrap().len(), 5);
    let roles = store.reconcilers().await.unwrap();
    assert_eq!(roles.iter().filter(|(_, r)| *r == mcpctl_reconciler::leader::Role::Leader).count(), 1, "{roles:?}");
}

#[tokio::test]
async fn a_deploy_notifies_listeners_once_committed() {
    let Some(store) = postgres().await else { return };
    assert_eq!(store.backend(), Backend::Postgres);
    let woken = Arc::new(tokio::sync::Notify::new());
    let listener = tokio::spawn({
        let (store, woken) = (store.clone(), woken.clone());
        async move { store.listen_deploys(woken).await }
    });
    // The wake-up every (re)connect gives, then one per deploy.
    tokio::time::timeout(Duration::from_secs(10), woken.notified()).await.expect("the listener connects");
    store.record_failure(&meta("c1"), "bad").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken.notified()).await.expect("the deploy was notified");
    // A transaction that rolls back notifies nothing (the refused apply below never commits).
    let p = plan(&state(&base_repo()), &[], "c2");
    let _ = store.fenced(Some(0)).apply_commit(&p, &meta("c2"), None).await;
    assert!(tokio::time::timeout(Duration::from_millis(500), woken.notified()).await.is_err(), "a rolled-back deploy notified");
    listener.abort();
}
