//! `begin_session` with a `task`: the project prompts most relevant to it follow the
//! instructions — by BM25, or by the project's gate `Llm` (a real LiteLLM), falling back to BM25
//! when that `Llm` fails — and the audit log names the method and the prompts. Without a task
//! the answer is the instructions alone, as before.

use mcpctl_gateway::McpSettings;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::harness::*;
use crate::litellm::LiteLlm;

const INSTRUCTIONS: &str = "Read the house rules before acting.";

/// A gated project `name` with five prompts on different subjects, a token `raw` for it, and
/// `gate` as its `spec.gate` (YAML flow, or empty).
fn project(name: &str, raw: &str, gate: &str) -> String {
    let prompts = [
        (
            "backup-policy",
            "How backups of the NAS are kept",
            "Snapshots run nightly at 02:00; keep 30 days. Restore from the newest snapshot first.",
        ),
        ("restart-rules", "Restarting services", "Ask before restarting anything. Never power off the NAS."),
        ("network-map", "VLANs and addresses", "VLAN 10 is the lab, VLAN 20 the cameras. The router is 10.0.0.1."),
        ("style", "", "Answer briefly. Name every tool you call."),
        ("media-server", "Jellyfin", "Jellyfin runs on port 8096 on the NAS; its library is /mnt/media."),
    ];
    let mut y = format!(
        "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: {name}}}\nspec:\n  gated: true\n  instructions: \"{INSTRUCTIONS}\"\n{gate}---\n"
    );
    for (p, description, content) in prompts {
        y += &format!(
            "apiVersion: mcpctl.io/v1\nkind: Prompt\nmetadata: {{name: {p}, project: {name}}}\nspec: {{description: \"{description}\", content: \"{content}\"}}\n---\n"
        );
    }
    y + &token_doc(&format!("{name}-user"), name, raw, "  bindings:\n    - {role: run, resource: servers}\n")
}

/// Call `begin_session` (with `task` when given) in a new session; the answer's text.
async fn begin(url: &str, token: &str, task: Option<&str>) -> String {
    let c = rust_client(url, token).await;
    let mut req = CallToolRequestParams::new("begin_session");
    if let Some(t) = task {
        req.arguments = Some(serde_json::Map::from_iter([("task".to_string(), json!(t))]));
    }
    let r = c.call_tool(req).await.unwrap();
    let _ = c.cancel().await;
    r.content[0].as_text().map(|t| t.text.clone()).unwrap_or_default()
}

/// The `## name` headings of an answer, in order.
fn chosen(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.strip_prefix("## ")).collect()
}

async fn audit_targets(gw: &Gw, project: &str) -> Vec<String> {
    gw.state.auditor.flush().await;
    let filter = reconciler::audit::AuditFilter { project: Some(project.into()), limit: 100, ..Default::default() };
    let mut events = gw.store.audit_events(&filter).await.unwrap();
    events.reverse(); // oldest first
    events.into_iter().filter(|e| e.target.starts_with("begin_session")).map(|e| e.target).collect()
}

const KB: &str = "mcpctl_pat_kb_0123456789abcdef";
const KB2: &str = "mcpctl_pat_kb2_0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_session_ranks_prompts_for_three_tasks_and_falls_back_when_the_llm_fails() {
    let broken = "apiVersion: mcpctl.io/v1\nkind: Llm\nmetadata: {name: broken}\nspec: {provider: openai, model: x, url: 'http://127.0.0.1:9/v1', timeoutSeconds: 2}\n---\n";
    let yaml = format!("{}{broken}{}", project("kb", KB, ""), project("kb2", KB2, "  gate: {llm: broken, maxPrompts: 1}\n"));
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("kb");

    // Without a task: today's answer, the instructions alone.
    assert_eq!(begin(&url, KB, None).await, INSTRUCTIONS);
    assert_eq!(begin(&url, KB, Some("   ")).await, INSTRUCTIONS, "a blank task is no task");

    let cases = [
        ("restore yesterday's backup of the photos", vec!["backup-policy"]),
        ("restart jellyfin, it is stuck", vec!["restart-rules", "media-server"]),
        ("which VLAN are the cameras on?", vec!["network-map"]),
        ("order a pizza", vec![]),
    ];
    for (task, want) in &cases {
        let text = begin(&url, KB, Some(task)).await;
        assert!(text.starts_with(INSTRUCTIONS), "{text}");
        assert_eq!(&chosen(&text), want, "task {task:?}:\n{text}");
    }
    let text = begin(&url, KB, Some("restore yesterday's backup of the photos")).await;
    assert!(
        text.contains("## backup-policy\nSnapshots run nightly at 02:00; keep 30 days."),
        "the prompt's content follows its name: {text}"
    );

    // The gate Llm is unreachable: BM25 chooses, within maxPrompts.
    let text = begin(&gw.url("kb2"), KB2, Some("restart jellyfin, it is stuck")).await;
    assert_eq!(chosen(&text), ["restart-rules"], "{text}");

    let targets = audit_targets(&gw, "kb").await;
    assert_eq!(
        targets,
        [
            "begin_session",
            "begin_session",
            "begin_session [bm25: backup-policy]",
            "begin_session [bm25: restart-rules, media-server]",
            "begin_session [bm25: network-map]",
            "begin_session [bm25: (none)]",
            "begin_session [bm25: backup-policy]",
        ]
    );
    assert_eq!(audit_targets(&gw, "kb2").await, ["begin_session [bm25 (llm failed): restart-rules]"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_session_lets_the_gate_llm_choose() {
    // The model answers with one real prompt, one invented, in prose: only the real one counts.
    let Some(llm) =
        tokio::task::spawn_blocking(|| LiteLlm::start(&[("gate-model", "Relevant: [\"network-map\", \"no-such-prompt\"]")])).await.unwrap()
    else {
        return;
    };
    let model = format!(
        "apiVersion: mcpctl.io/v1\nkind: Llm\nmetadata: {{name: picker}}\nspec: {{provider: openai, model: gate-model, url: '{}'}}\n---\n",
        llm.url()
    );
    let yaml = format!("{model}{}", project("kb", KB, "  gate: {llm: picker}\n"));
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    // BM25 would pick backup-policy for this task; the model picked network-map.
    let text = begin(&gw.url("kb"), KB, Some("restore yesterday's backup of the photos")).await;
    assert_eq!(chosen(&text), ["network-map"], "{text}\nLiteLLM log:\n{}", llm.log());
    assert_eq!(begin(&gw.url("kb"), KB, None).await, INSTRUCTIONS);
    assert_eq!(audit_targets(&gw, "kb").await, ["begin_session [llm: network-map]", "begin_session"]);
    gw.stop().await;
}
