//! Schema integration tests: every invalid fixture yields exactly its expected diagnostics, valid
//! fixtures and every example repo validate, and resources survive a YAML round trip.

mod common;

use common::{fixture, read_tree};
use mcpctl_schema::{check, emit, Kind, Resource, SourceFile, Spec};

#[test]
fn every_invalid_fixture_reports_exactly_its_expected_errors() {
    let dir = fixture("invalid");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let case = entry.unwrap().path();
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let err = check(&read_tree(&case)).expect_err(&format!("{} should be invalid", case.display()));
        assert_eq!(err.to_string().trim(), expected.trim(), "case {}", case.display());
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} cases found");
}

#[test]
fn valid_fixture_covers_every_kind() {
    let state = check(&read_tree(&fixture("valid/full"))).unwrap_or_else(|d| panic!("{d}"));
    for kind in Kind::ALL {
        assert!(state.of_kind(*kind).next().is_some(), "no {kind} in the valid fixture");
    }
    // The grouped form's `project:` applies to its items.
    let helper = state.resolve(Kind::Agent, "helper", Some("home")).expect("agent in project home");
    assert_eq!(helper.source().unwrap(), "nested/grouped.yml:7:5");
    // Template defaults and parameters are substituted.
    let Some(Resource { spec: Spec::Server(s), .. }) = state.resolve(Kind::Server, "fetch", None) else { panic!() };
    let Some(Resource { spec: Spec::Template(t), .. }) = state.resolve(Kind::Template, "fetcher", None) else { panic!() };
    let server = mcpctl_schema::template::instantiate(t, s.from_template.as_ref().unwrap());
    assert_eq!(server.url.as_deref(), Some("http://127.0.0.1:8080/mcp"));
}

#[test]
fn every_example_repo_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        // examples/ci holds CI workflows (in dot-directories, never loaded), not a repo.
        if dir.is_dir() && !dir.ends_with("ci") {
            let files = read_tree(&dir);
            assert!(!files.is_empty(), "{} has no YAML", dir.display());
            if let Err(d) = check(&files) {
                panic!("{} is invalid:\n{d}", dir.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no example repos found");
}

#[test]
fn yaml_round_trip_keeps_every_resource() {
    let state = check(&read_tree(&fixture("valid/full"))).unwrap();
    let text: String = state.resources().iter().map(|r| emit::yaml_document(&r.to_json())).collect();
    let again = check(&[SourceFile::new("all.yaml", text.clone())]).unwrap_or_else(|d| panic!("{d}\n{text}"));
    assert_eq!(again.len(), state.len());
    for r in state.resources() {
        let back = again.get(&r.key()).unwrap_or_else(|| panic!("{} lost", r.key()));
        assert_eq!(back.body_and_hash(), r.body_and_hash(), "{}", r.key());
    }
}

/// The canonical body is serialized straight from the typed resource (and the hash streamed);
/// it must stay byte-for-byte the text of its JSON value, which stored rows were written as.
#[test]
fn canonical_body_and_hash_are_the_text_of_the_json_value() {
    let mut seen = 0;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut dirs = vec![fixture("valid/full")];
    dirs.extend(std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir() && !p.ends_with("ci")));
    for dir in dirs {
        let state = check(&read_tree(&dir)).unwrap_or_else(|d| panic!("{} is invalid:\n{d}", dir.display()));
        for (r, hash) in state.resources().iter().zip(state.hashes()) {
            let text = r.to_json().to_string();
            assert_eq!(r.body(), text, "{}", r.key());
            let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
            assert_eq!(r.hash(), want, "{}", r.key());
            assert_eq!(*hash, want, "{}", r.key());
            assert_eq!(r.body_and_hash(), (text.clone(), want), "{}", r.key());
            // A stored body decodes back to the resource (in one pass when canonical, as here),
            // as through its JSON tree.
            let back = mcpctl_schema::Resource::from_body(&text).unwrap_or_else(|e| panic!("{}: {e}", r.key()));
            assert_eq!((&back.metadata, &back.spec), (&r.metadata, &r.spec), "{}", r.key());
            let mut tree: serde_json::Value = serde_json::from_str(&text).unwrap();
            tree.as_object_mut().unwrap().insert("extra".into(), serde_json::json!(1));
            let slow = mcpctl_schema::Resource::from_body(&tree.to_string()).unwrap();
            assert_eq!((&slow.metadata, &slow.spec), (&r.metadata, &r.spec), "{}", r.key());
            seen += 1;
        }
    }
    assert!(seen > 20, "only {seen} resources checked");
}

#[test]
fn non_utf8_and_huge_files_are_clear_errors() {
    let mut bytes = b"apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: b\xff}\n".to_vec();
    let err = check(&[SourceFile::new("bin.yaml", bytes.clone())]).unwrap_err().to_string();
    assert_eq!(err, "bin.yaml:3:19: file is not valid UTF-8 (invalid byte at offset 54)");
    bytes = vec![b'#'; mcpctl_schema::load::MAX_FILE_BYTES + 1];
    let err = check(&[SourceFile::new("big.yaml", bytes)]).unwrap_err().to_string();
    assert!(err.starts_with("big.yaml:1:1: file is 8388609 bytes; the limit is 8388608 bytes"), "{err}");
}

#[test]
fn empty_repo_and_empty_documents_are_valid() {
    assert!(check(&[]).unwrap().is_empty());
    assert!(check(&[SourceFile::new("a.yaml", "---\n---\n# nothing\n")]).unwrap().is_empty());
}

#[test]
fn json_schema_names_every_kind() {
    let schema = serde_json::to_string(&mcpctl_schema::json_schema::document_schema()).unwrap();
    for kind in Kind::ALL {
        assert!(schema.contains(&format!("\"const\":\"{}\"", kind.as_str())), "{kind} missing");
    }
    assert!(schema.contains("additionalProperties"));
}

#[test]
fn deep_files_and_alias_bombs_are_errors_with_positions() {
    // 100 KB of nested block sequences, then of flow ones, checked on a 2 MiB stack.
    let files = vec![
        SourceFile::new("deep/block.yaml", format!("servers:\n{}x\n", "- ".repeat(50_000))),
        SourceFile::new("deep/flow.yaml", format!("servers: {}{}\n", "[".repeat(100), "]".repeat(100))),
        SourceFile::new("bomb.yaml", {
            let mut t = String::from("a: &a \"lol\"\n");
            for (p, c) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
                t.push_str(&format!("{c}: &{c} [{}]\n", vec![format!("*{p}"); 10].join(", ")));
            }
            t
        }),
    ];
    // Exactly at the limit (the document, `spec` and `x` are three levels): parsed, converted
    // and decoded, on the same small stack.
    let at_limit = mcpctl_schema::document::MAX_DEPTH - 3;
    let mut files = files;
    files.push(SourceFile::new(
        "limit.yaml",
        format!(
            "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: deep}}\nspec:\n  x: {}{}\n",
            "[".repeat(at_limit),
            "]".repeat(at_limit)
        ),
    ));
    let err = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || check(&files).unwrap_err().to_string())
        .unwrap()
        .join()
        .unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[3].starts_with("limit.yaml:5:3: User/deep: spec.x: unknown field `x`"), "{err}");
    assert!(lines[0].starts_with("bomb.yaml:") && lines[0].contains("MiB in memory"), "{err}");
    assert!(lines[1].starts_with("deep/block.yaml:2:127: YAML syntax error: collections nest deeper than 64 levels"), "{err}");
    assert!(lines[2].starts_with("deep/flow.yaml:1:73: YAML syntax error: collections nest deeper than 64 levels"), "{err}");
}

#[test]
fn files_a_source_refused_are_errors_at_their_path() {
    use mcpctl_schema::Refusal;
    let files = vec![
        SourceFile::new("ok.yaml", "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\n"),
        SourceFile::refused("big.yaml", Refusal::TooLarge { bytes: 1 << 40 }),
        SourceFile::refused("servers/link.yaml", Refusal::Symlink),
        SourceFile::refused("fifo.yaml", Refusal::NotRegular),
    ];
    let err = check(&files).unwrap_err().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(lines[0], "big.yaml:1:1: file is 1099511627776 bytes; the limit is 8388608 bytes");
    assert!(lines[1].starts_with("fifo.yaml:1:1: not a regular file"), "{err}");
    assert!(lines[2].starts_with("servers/link.yaml:1:1: file is a symbolic link"), "{err}");
}

#[test]
fn duplicate_token_hashes_name_both_positions() {
    let case = fixture("invalid/duplicate_token_hash");
    let err = check(&read_tree(&case)).unwrap_err().to_string();
    assert_eq!(
        err,
        "work.yaml:9:9: McpToken/work/ci: spec.hash: the same hash as McpToken/home/laptop (at home.yaml:4:13); every McpToken needs its own token"
    );
    // With its own hash the same repo is valid.
    let mut files = read_tree(&case);
    let work = files.iter_mut().find(|f| f.path == "work.yaml").unwrap();
    let text = String::from_utf8(work.bytes.to_vec()).unwrap().replace("sha256:9f86", "sha256:0f86");
    work.bytes = text.into_bytes().into();
    check(&files).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn only_the_first_missing_references_get_a_hint() {
    let n = mcpctl_schema::validate::MAX_HINTS + 50;
    let mut yaml = String::from("llms:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - metadata: {{name: model-{i:04}}}\n    spec: {{provider: openai, model: m}}\n"));
    }
    yaml.push_str("agents:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - metadata: {{name: agent-{i:04}, project: p}}\n    spec: {{llm: modl-{i:04}}}\n"));
    }
    yaml.push_str("projects:\n  - metadata: {name: p}\n");
    let err = check(&[SourceFile::new("many.yaml", yaml)]).unwrap_err();
    assert_eq!(err.len(), n);
    let hinted = err.iter().filter(|d| d.message.contains("did you mean")).count();
    assert_eq!(hinted, mcpctl_schema::validate::MAX_HINTS, "{err}");
}

#[test]
fn a_repo_is_bounded_as_a_whole_in_bytes_read_and_tree_built() {
    use mcpctl_schema::load::{MAX_FILE_BYTES, MAX_REPO_BYTES};
    // Nine (nearly) full-size files: the ninth would take the repo past its byte limit; a small
    // file after it still fits. (Invalid UTF-8 keeps the others from being parsed; the budget is
    // taken before decoding.)
    let full = |i| vec![0xff_u8; if i == 0 { MAX_FILE_BYTES - 100 } else { MAX_FILE_BYTES }];
    assert_eq!(MAX_REPO_BYTES, 8 * MAX_FILE_BYTES as u64);
    let mut files: Vec<SourceFile> = (0..9).map(|i| SourceFile::new(format!("f{i}.yaml"), full(i))).collect();
    files.push(SourceFile::new("small.yaml", "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\n"));
    let err = check(&files).unwrap_err();
    let refused: Vec<String> = err.iter().filter(|d| !d.message.contains("UTF-8")).map(ToString::to_string).collect();
    assert_eq!(
        refused,
        ["f8.yaml:1:1: file is 8388608 bytes and the repo's resource files before it (in path order) already take the rest of the 67108864 bytes a repo may have; not read"]
    );
    assert!(err.iter().all(|d| d.file.as_ref() != "small.yaml"), "the smaller file was refused too: {err}");

    // Six files whose trees take ~50 MB each (each within the per-file 64 MiB): the sixth crosses
    // the repo's 256 MiB of trees.
    let file = format!("- &a {}\n- &b [{}]\n- [{}]\n", "x".repeat(60_000), ["*a"; 10].join(", "), ["*b"; 80].join(", "));
    let files: Vec<SourceFile> = (0..6).map(|i| SourceFile::new(format!("t{i}.yaml"), file.clone())).collect();
    let err = check(&files).unwrap_err();
    let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 6, "{err}");
    assert!(lines[..5].iter().all(|l| l.contains("a document must be a mapping")), "{err}");
    assert!(lines[5].starts_with("t5.yaml:3:") && lines[5].contains("the repo's files together expand to more than 256 MiB"), "{err}");
}
