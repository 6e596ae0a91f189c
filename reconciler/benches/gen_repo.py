#!/usr/bin/env python3
"""Write a repo of N resources for the whole-process benchmarks in docs/performance.md.

usage: gen_repo.py N DIR [VARIANT]

N resources in files of 100 (one project, then servers, users and prompts in turn, as the
plan_apply bench builds them); VARIANT changes every 100th resource's spec (1 %).
"""
import os
import sys

n, out = int(sys.argv[1]), sys.argv[2]
variant = int(sys.argv[3]) if len(sys.argv) > 3 else 0
files = [[] for _ in range(max(1, n // 100))]


def push(i, kind, name, project, spec):
    proj = f"\n  project: {project}" if project else ""
    files[i % len(files)].append(
        f"apiVersion: mcpctl.io/v1\nkind: {kind}\nmetadata:\n  name: {name}{proj}\n  labels: {{tier: bench}}\nspec:\n{spec}---\n"
    )


push(0, "Project", "bench", None, "  description: benchmark\n")
for i in range(1, n):
    v = variant if i % 100 == 0 else 0
    if i % 3 == 0:
        push(i, "Server", f"srv-{i}", None, f'  command: npx\n  args: ["-y", "pkg-{i}", "--v{v}"]\n  env:\n    - {{name: LOG, value: info}}\n')
    elif i % 3 == 1:
        push(i, "User", f"user-{i}", None, f"  email: user{i}-{v}@example.com\n  displayName: User {i}\n")
    else:
        push(i, "Prompt", f"prompt-{i}", "bench", f"  content: |\n    Rule {i} version {v}.\n    Be careful.\n  priority: {i % 7}\n")
os.makedirs(out, exist_ok=True)
for k, docs in enumerate(files):
    with open(os.path.join(out, f"f{k:04}.yaml"), "w") as f:
        f.write("".join(docs))
