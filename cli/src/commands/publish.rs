//! Commands that write to git: `push` (commit and push the checkout) and `rollback`.

use anyhow::Context;

use super::{load_repo, open_existing_store, Result};
use crate::args::*;
use crate::render;

pub(super) async fn push(g: &Global, a: PushArgs) -> Result {
    let desired = load_repo(&g.repo)?;
    // Show what the push will deploy, when the target store is reachable.
    if let Ok(store) = open_existing_store(g).await {
        if let Ok(stored) = store.resources().await {
            let p = reconciler::plan(&desired, &stored, "push");
            render::plan_text(&mut anstream::stdout(), &p).context("writing output")?;
        }
    }
    let committed = reconciler::publish::commit_all(&g.repo, &a.message).context("commit failed")?;
    // Everything left out is named, up to a screenful (an untracked build directory can hold
    // thousands of files); files holding a private key are always named.
    const SHOWN: usize = 50;
    let (keys, others): (Vec<_>, Vec<_>) =
        committed.left_out.iter().partition(|(_, why)| *why == reconciler::publish::LeftOutReason::PrivateKey);
    for (path, why) in keys.iter().chain(others.iter().take(SHOWN)) {
        eprintln!("left out {path}: {why}");
    }
    if others.len() > SHOWN {
        eprintln!("left out {} more files that are not resource files", others.len() - SHOWN);
    }
    if let Some(sha) = &committed.sha {
        render::ok_line(&format!("committed {}", &sha[..12]));
    }
    let branch = reconciler::publish::push(&g.repo).context("push failed")?;
    render::ok_line(&format!("pushed {branch} to origin"));
    Ok(())
}

pub(super) fn rollback(g: &Global, a: RollbackArgs) -> Result {
    let sha = reconciler::publish::rollback(&g.repo, &a.sha, a.force).context("rollback failed")?;
    render::ok_line(&format!("committed {} restoring the tree of {}", &sha[..12], a.sha));
    if !a.no_push {
        let branch = reconciler::publish::push(&g.repo).context("push failed")?;
        render::ok_line(&format!("pushed {branch} to origin"));
    }
    Ok(())
}
