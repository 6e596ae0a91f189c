//! The decoded files of a directory repo, kept on disk between `mcpctl` processes, so a `plan`
//! or `apply` parses only the files whose bytes changed since the last run.
//!
//! # Guarantees
//! The result is the one [`schema::check`] gives: a file is taken from the cache only when its
//! path and the SHA-256 of its bytes match, by the same build of mcpctl that saved it (see
//! [`schema::FileCache::restore`]); the whole repo is validated again every time, and the plan is
//! made against the store's rows as always. The cache is only an optimization: a missing,
//! unreadable, corrupt or foreign file is ignored (every file is parsed), and failing to write it
//! changes nothing but the next run's speed. It lives in the user's cache directory
//! (`$XDG_CACHE_HOME/mcpctl/decoded/`, else `~/.cache/mcpctl/decoded/`), one file per repo
//! directory (a JSON header line, then compact binary records), written whole and renamed into
//! place; `MCPCTL_NO_DECODE_CACHE=1` turns it off.
//! Bounded: it holds at most the files of the repo's last run, themselves bounded by the repo
//! limits of [`schema::load`].

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use schema::load::SavedFile;
use schema::{DesiredState, Diagnostics, FileCache, SourceFile};

/// What a cache file starts with; a different one (another build, another format) is ignored.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Header {
    format: u32,
    build: String,
}

/// Version of the cache file's layout.
const FORMAT: u32 = 2;

/// Validate a directory repo's `files` as [`schema::check`] does, reusing the decoded files that
/// the last run on `root` saved and saving this run's for the next.
///
/// # Errors
/// As [`schema::check`].
pub fn check_dir(root: &Path, files: &mut [SourceFile]) -> Result<DesiredState, Diagnostics> {
    check_with(cache_path(root), &build_id(), files).0
}

/// [`check_dir`] with the cache at `path` (none: no cache) for build `build`; also returns how
/// many files were parsed.
fn check_with(path: Option<PathBuf>, build: &str, files: &mut [SourceFile]) -> (Result<DesiredState, Diagnostics>, usize) {
    for f in files.iter_mut().filter(|f| f.refused.is_none() && f.id.is_none()) {
        f.id = Some(format!("sha256:{}", hex::encode(Sha256::digest(&f.bytes))));
    }
    let header = Header { format: FORMAT, build: build.to_string() };
    let mut cache = FileCache::moving();
    let saved = path.as_deref().and_then(|p| read(p, &header)).unwrap_or_default();
    let offered = saved.len();
    cache.restore(saved);
    let loaded = schema::load::load_cached(files, &mut cache);
    if let Some(p) = path.filter(|_| cache.parsed_last > 0 || offered != cache.len()) {
        // Best effort: a cache that cannot be written only makes the next run slower.
        let _ = write(&p, &header, &cache.save());
    }
    let parsed = cache.parsed_last;
    drop(cache);
    (schema::validate::check_loaded(loaded), parsed)
}

/// The cache file of the repo directory `root`, unless caching is off or no cache directory is
/// known.
fn cache_path(root: &Path) -> Option<PathBuf> {
    if std::env::var_os("MCPCTL_NO_DECODE_CACHE").is_some_and(|v| v == "1") {
        return None;
    }
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    let root = std::fs::canonicalize(root).ok()?;
    let name = hex::encode(&Sha256::digest(root.as_os_str().as_encoded_bytes())[..16]);
    Some(base.join("mcpctl").join("decoded").join(format!("{name}.bin")))
}

/// This build of mcpctl: its version and its executable's size and modification time (a
/// rebuilt binary may decode differently even under the same version).
fn build_id() -> String {
    let exe = std::env::current_exe().and_then(std::fs::metadata).ok();
    let (len, mtime) = exe.map_or((0, 0), |m| {
        (m.len(), m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos()))
    });
    format!("{}+{len}+{mtime}", env!("CARGO_PKG_VERSION"))
}

/// The saved files in the cache at `path`, if it is one of this build: its first line is the
/// header (JSON), the rest the files' compact records (see [`SavedFile::write_all`]), only
/// located here: each is read from the open file and decoded when a load asks for it, so the
/// file is never in memory whole.
fn read(path: &Path, header: &Header) -> Option<Vec<SavedFile>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    let mut line = Vec::new();
    std::io::Read::take(std::io::BufReader::new(&file), 4096).read_until(b'\n', &mut line).ok()?;
    if line.pop() != Some(b'\n') || serde_json::from_slice::<Header>(&line).ok()? != *header {
        return None;
    }
    SavedFile::read_file(file, line.len() as u64 + 1)
}

/// Write the cache whole to a temporary file beside `path` (named after this process), then
/// rename it into place: a reader sees the old file or the new one, never half of one.
fn write(path: &Path, header: &Header, files: &[SavedFile]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        SavedFile::write_all(files, &mut out)?;
        out.flush()
    })();
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, email: &str) -> String {
        format!("apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: {name}}}\nspec: {{email: {email}}}\n")
    }

    /// Per resource: key, source, body and the hash the state carries.
    type Shown = Vec<(String, Option<String>, String, String)>;

    /// What a check gave, comparably.
    fn show(r: &Result<DesiredState, Diagnostics>) -> Result<Shown, String> {
        r.as_ref()
            .map(|s| s.resources().iter().zip(s.hashes()).map(|(r, h)| (r.key().to_string(), r.source(), r.body(), h.clone())).collect())
            .map_err(ToString::to_string)
    }

    #[test]
    fn a_second_run_parses_only_changed_files_and_never_serves_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        for i in 0..5 {
            std::fs::write(repo.join(format!("u{i}.yaml")), user(&format!("u{i}"), "a@example.com")).unwrap();
        }
        let cache = dir.path().join("cache/decoded.json");
        let run = |build: &str| {
            let mut files = crate::read_dir(&repo).unwrap();
            let (got, parsed) = check_with(Some(cache.clone()), build, &mut files);
            (show(&got), show(&schema::check(&crate::read_dir(&repo).unwrap())), parsed)
        };
        let (got, want, parsed) = run("b1");
        assert_eq!((got == want, parsed), (true, 5));
        let (got, want, parsed) = run("b1");
        assert_eq!((got == want, parsed), (true, 0), "{got:?}");
        // Changed bytes are parsed again and what they say wins; an error in them is reported.
        std::fs::write(repo.join("u3.yaml"), user("u3", "changed@example.com")).unwrap();
        let (got, want, parsed) = run("b1");
        assert_eq!((got == want, parsed), (true, 1));
        assert!(format!("{got:?}").contains("changed@example.com"));
        std::fs::write(repo.join("u1.yaml"), user("u1", "3")).unwrap();
        for _ in 0..2 {
            // A file with problems is never saved: the next run parses it and reports them again.
            let (got, want, parsed) = run("b1");
            assert_eq!((got == want, parsed), (true, 1));
            assert!(got.unwrap_err().contains("u1.yaml:4:"));
        }
        // Another build ignores the cache; so does a corrupt one. Neither changes the answer.
        let (got, want, parsed) = run("b2");
        assert_eq!((got == want, parsed), (true, 5));
        std::fs::write(&cache, "{\"format\":1,\"build\":\"b2\"}\n[{\"path\": 3}]").unwrap();
        let (got, want, parsed) = run("b2");
        assert_eq!((got == want, parsed), (true, 5));
        // No cache (no cache directory, or turned off): the plain check.
        let mut files = crate::read_dir(&repo).unwrap();
        assert_eq!(check_with(None, "b2", &mut files).1, 5);
    }
}
