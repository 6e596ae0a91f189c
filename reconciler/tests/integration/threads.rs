//! Chat threads in the store, on every backend: ownership in SQL, the pending → complete /
//! failed life of a reply, and the sweep that fails the replies of a stopped gateway.

use mcpctl_reconciler::store::threads::{Finished, NewMessage, ThreadFilter, Usage};

use crate::common::stores;

#[tokio::test]
async fn threads_keep_owners_apart_and_pending_replies_end_once() {
    for (store, _guard) in stores().await {
        let id = format!("th_{}_{}", std::process::id(), store.backend() as u8);
        store.create_thread(&id, "lab", "assistant", "user:alice", "first").await.unwrap();
        let user = NewMessage { role: "user", content: "hi", personality: Some("concise"), ..Default::default() };
        store.add_message(&id, &user).await.unwrap();
        let pending = NewMessage { role: "assistant", content: "", model: Some("m"), ..Default::default() };
        let reply = store.begin_message(&id, &pending).await.unwrap();
        store.update_pending(reply, "par").await.unwrap();

        assert!(store.thread(&id, Some("user:bob")).await.unwrap().is_none(), "another owner sees nothing");
        let t = store.thread(&id, Some("user:alice")).await.unwrap().unwrap();
        assert_eq!((t.message_count, t.personality.as_deref()), (2, Some("concise")));
        assert!(store.thread(&id, None).await.unwrap().is_some(), "audit holders read any owner's");
        let mine = ThreadFilter { owner: Some("user:alice".into()), project: Some("lab".into()), limit: 10, ..Default::default() };
        assert!(store.threads(&mine).await.unwrap().iter().any(|t| t.id == id));
        let bobs = ThreadFilter { owner: Some("user:bob".into()), limit: 10, ..Default::default() };
        assert!(store.threads(&bobs).await.unwrap().iter().all(|t| t.id != id));

        // A sweep with a cutoff in the past leaves a live reply alone; one in the future fails it,
        // keeping what was received; a late finish cannot overwrite the failure.
        store.fail_stale_pending("2000-01-01T00:00:00.000Z").await.unwrap();
        assert_eq!(store.messages(&id).await.unwrap()[1].status, "pending");
        assert!(store.fail_stale_pending("2999-01-01T00:00:00.000Z").await.unwrap() >= 1);
        let done =
            Finished { content: "partial and more", usage: Some(Usage { prompt_tokens: 1, completion_tokens: 2 }), ..Default::default() };
        store.finish_message(reply, &done).await.unwrap();
        let m = store.messages(&id).await.unwrap();
        assert_eq!((m[1].status.as_str(), m[1].content.as_str()), ("failed", "par"));
        assert!(m[1].error.as_deref().unwrap().contains("interrupted"));

        // A reply that ends normally.
        let r2 = store.begin_message(&id, &pending).await.unwrap();
        let calls = serde_json::json!([{"id": "c1", "name": "time__now", "arguments": "{}"}]);
        let done = Finished { content: "ok", tool_calls: Some(&calls), latency_ms: Some(5), ..Default::default() };
        store.finish_message(r2, &done).await.unwrap();
        let m = store.messages(&id).await.unwrap();
        assert_eq!(m[2].status, "complete");
        assert_eq!(m[2].tool_calls.as_ref().unwrap()[0]["name"], "time__now");
        assert_eq!(m[2].latency_ms, Some(5));
    }
}
