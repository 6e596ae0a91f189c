//! The docs against the binary: every `mcpctl …` command line in a shell block of README.md and
//! docs/*.md is accepted by the real argument parser, the generated reference pages are current,
//! and the SDK snippets of docs/clients.md reach a real gateway.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;

use super::{homelab, remote_and_work, serve_bare, Env};
use crate::args::Cli;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// README.md and docs/*.md (the generated reference pages excepted: they are `--help` itself).
fn pages() -> Vec<PathBuf> {
    let mut v = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// The fenced blocks of `lang` in a markdown text: (line of the first content line, content).
fn blocks(text: &str, langs: &[&str]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, bool, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        match &mut current {
            None if t.starts_with("```") => current = Some((i + 2, langs.contains(&t[3..].trim()), String::new())),
            Some((start, wanted, body)) if t.starts_with("```") => {
                if *wanted {
                    out.push((*start, std::mem::take(body)));
                }
                current = None;
            }
            Some((_, _, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// A shell word or an operator (`|`, `&&`, `;`, `&`, a redirection), or the start of a comment.
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Op,
    Redirect,
}

/// Split one logical shell line: quotes, `$(…)` and `${…}` kept inside their word; a `#` that
/// starts a word ends the line.
fn lex(line: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, out: &mut Vec<Tok>| {
        if *in_word {
            out.push(Tok::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => flush(&mut word, &mut in_word, &mut out),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '$' if matches!(chars.get(i + 1), Some('(') | Some('{')) => {
                in_word = true;
                let (open, close) = if chars[i + 1] == '(' { ('(', ')') } else { ('{', '}') };
                let mut depth = 0;
                while i < chars.len() {
                    word.push(chars[i]);
                    if chars[i] == open {
                        depth += 1;
                    } else if chars[i] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            '|' | ';' | '&' => {
                flush(&mut word, &mut in_word, &mut out);
                while matches!(chars.get(i + 1), Some('|') | Some('&')) {
                    i += 1;
                }
                out.push(Tok::Op);
            }
            '>' | '<' => {
                // `2>`: the digit belongs to the redirection.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                flush(&mut word, &mut in_word, &mut out);
                while matches!(chars.get(i + 1), Some('>') | Some('&')) {
                    i += 1;
                }
                out.push(Tok::Redirect);
            }
            '\\' if i + 1 < chars.len() => {
                in_word = true;
                i += 1;
                word.push(chars[i]);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    flush(&mut word, &mut in_word, &mut out);
    out
}

/// The argument lists of the `mcpctl` invocations on one logical line (`mcpctl …` or
/// `cargo run -p mcpctl [flags] -- …`); `None` for one written as a synopsis (`<PATH>`, `[--flag]`,
/// `a|b`, `…`), which is not a command to run.
fn invocations(line: &str) -> Vec<Option<Vec<String>>> {
    // `<path|url>`-style placeholders would read as redirections: the whole line is a synopsis.
    let placeholder = line.match_indices('<').any(|(i, _)| {
        let rest = &line[i + 1..];
        rest.starts_with(|c: char| c.is_ascii_alphabetic()) && rest.find('>').is_some_and(|end| !rest[..end].contains(' '))
    });
    let toks = lex(line.trim_start_matches("$ "));
    let mut out = Vec::new();
    for cmd in toks.split(|t| *t == Tok::Op) {
        let mut words = Vec::new();
        let mut redirected = false;
        for t in cmd {
            match t {
                Tok::Redirect => redirected = true,
                Tok::Word(w) if redirected => {
                    let _ = w;
                    redirected = false;
                }
                Tok::Word(w) => words.push(w.clone()),
                Tok::Op => unreachable!(),
            }
        }
        let words: Vec<String> = words.into_iter().skip_while(|w| w.contains('=') && !w.starts_with('-')).collect();
        let args = match words.first().map(String::as_str) {
            Some("mcpctl") => words[1..].to_vec(),
            Some("cargo") if words.get(1).map(String::as_str) == Some("run") && words.contains(&"mcpctl".to_string()) => {
                match words.iter().position(|w| w == "--") {
                    Some(i) => words[i + 1..].to_vec(),
                    None => continue,
                }
            }
            _ => continue,
        };
        let synopsis = args.iter().any(|a| {
            a.contains('…')
                || a.contains("...")
                || a.starts_with('[')
                || a.ends_with(']')
                || (a.starts_with('<') && a.ends_with('>'))
                || (a.contains('|') && !a.contains("://") && !a.starts_with('{'))
        });
        out.push((!synopsis && !placeholder).then_some(args));
    }
    out
}

#[test]
fn every_mcpctl_command_line_in_the_docs_is_accepted_by_the_cli() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root()).unwrap().display().to_string();
        for (start, body) in blocks(&text, &["sh", "bash", "shell", "console"]) {
            let mut logical = String::new();
            let mut first = start;
            for (i, line) in body.lines().enumerate() {
                if logical.is_empty() {
                    first = start + i;
                }
                match line.strip_suffix('\\') {
                    Some(head) => {
                        logical.push_str(head);
                        logical.push(' ');
                        continue;
                    }
                    None => logical.push_str(line),
                }
                for args in invocations(&std::mem::take(&mut logical)).into_iter().flatten() {
                    checked += 1;
                    let argv = std::iter::once("mcpctl".to_string()).chain(args.iter().cloned());
                    if let Err(e) = Cli::try_parse_from(argv) {
                        if !matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) {
                            let why = e.to_string().lines().next().unwrap_or_default().to_string();
                            failures.push(format!("{name}:{first}: mcpctl {}\n    {why}", args.join(" ")));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} command line(s) in the docs are refused by mcpctl:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 60, "only {checked} command lines found: is the extraction broken?");
}

#[test]
fn the_shell_lexer_keeps_words_and_drops_redirections() {
    let lines = invocations(r#"FOO=1 mcpctl backup | gzip > b.gz && mcpctl --database-url "x y" restore - 2>&1 # done"#);
    assert_eq!(lines, [Some(vec!["backup".to_string()]), Some(vec!["--database-url".into(), "x y".into(), "restore".into(), "-".into()])]);
    assert_eq!(invocations("mcpctl test mcp URL [--token T]"), [None]);
    assert_eq!(invocations("mcpctl -C <path|url> serve"), [None]);
    assert_eq!(invocations("mcpctl secret set api-keys KEY < value.txt")[0].as_ref().unwrap().len(), 4);
    assert_eq!(invocations(r#"mcpctl test mcp u --token "$(cat ~/.t)" --args '{"a":1}'"#)[0].as_ref().unwrap()[4], "$(cat ~/.t)");
}

#[test]
fn the_reference_pages_are_generated_from_the_binary() {
    for page in ["cli", "resources"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mcpctl")).args(["reference", page]).output().unwrap();
        assert!(out.status.success());
        let committed = std::fs::read_to_string(root().join(format!("docs/reference/{page}.md"))).unwrap();
        assert!(
            String::from_utf8(out.stdout).unwrap() == committed,
            "docs/reference/{page}.md is stale: run `cargo run -p mcpctl -- reference {page} > docs/reference/{page}.md`"
        );
    }
}

/// The one block of `lang` in docs/clients.md, pointed at `addr`.
fn snippet(lang: &str, addr: &str) -> String {
    let text = std::fs::read_to_string(root().join("docs/clients.md")).unwrap();
    let found = blocks(&text, &[lang]);
    assert_eq!(found.len(), 1, "docs/clients.md has one ```{lang} block");
    found[0].1.replace("http://127.0.0.1:8080", &format!("http://{addr}"))
}

#[test]
fn the_python_and_typescript_snippets_of_the_clients_page_call_the_gateway() {
    let (Ok(python), Ok(everything)) = (std::env::var("MCPCTL_PEER_PYTHON"), std::env::var("MCPCTL_PEER_EVERYTHING")) else {
        if std::env::var_os("CI").is_some() {
            panic!("MCPCTL_PEER_PYTHON / MCPCTL_PEER_EVERYTHING are not set: CI must run the real SDKs (source .ci/peers.sh)");
        }
        return eprintln!("SKIPPED: MCPCTL_PEER_PYTHON is not set (source .ci/peers.sh)");
    };
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&homelab()));
    assert!(env.run(&work, &["push", "-m", "homelab"]).status.success());
    let (mut child, addr) = serve_bare(&env, &bare, &[]);
    let token = "mcpctl_pat_demo_homelab_0123456789abcdef";

    let py_file = env.dir.path().join("client.py");
    std::fs::write(&py_file, snippet("python", &addr)).unwrap();
    let py = Command::new(&python).arg(&py_file).env("MCPCTL_TOKEN", token).output().unwrap();

    // The SDK is where .ci/peers.sh installed server-everything (…/node_modules/@modelcontextprotocol/…).
    let modules = Path::new(&everything).ancestors().nth(4).unwrap().to_path_buf();
    let js_dir = env.dir.path().join("js");
    std::fs::create_dir_all(&js_dir).unwrap();
    std::os::unix::fs::symlink(&modules, js_dir.join("node_modules")).unwrap();
    std::fs::write(js_dir.join("client.mjs"), snippet("js", &addr)).unwrap();
    let js = Command::new("node").arg(js_dir.join("client.mjs")).env("MCPCTL_TOKEN", token).output().unwrap();
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();

    for (what, out) in [("python", &py), ("typescript", &js)] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{what}: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("begin_session"), "{what} listed no begin_session:\n{stdout}");
        assert!(stdout.contains("home lab"), "{what} got no project instructions from begin_session:\n{stdout}");
    }
}
