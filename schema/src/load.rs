//! Files → resources: refusals handed over by the sources, the repo-wide and per-file size
//! limits, UTF-8, YAML parsing (bounded, see [`crate::document`]), the single and grouped
//! document forms, strict typed decoding with positions for every error.

use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::document::{self, Node, Pos, Seg, Value, MAX_REPO_TREE_BYTES};
use crate::hint::did_you_mean;
use crate::kind::Kind;
use crate::resource::{Addr, FileText, Metadata, NodeAt, Origin, Resource, ResourceKey, Spec, API_VERSION};

/// Files larger than this are refused with a clear error. Sources check the size the file
/// system or the git object header reports before reading a byte (see [`Refusal::TooLarge`]).
/// Why 8 MiB: real resource files are a few KB; a generated one with many prompts stays well
/// below; together with [`crate::document::MAX_TREE_BYTES`] it bounds what one file costs.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of resource files one repo may have in all: sources stop reading at it, so a
/// commit of many big files (zeros compress to almost nothing in git) cannot fill memory. Files
/// are taken in path order; one that would cross the limit is refused (see
/// [`Refusal::RepoTooLarge`]) and later, smaller ones may still fit. Why 64 MiB: eight files of
/// the largest size; a real repo is well under 1 MiB.
pub const MAX_REPO_BYTES: u64 = 64 * 1024 * 1024;

/// Deepest directory a source enters, in path components below the repo root: a deeper one is
/// refused ([`Refusal::TooDeep`]) and not entered. Why 32: repos use two to four levels; it also
/// bounds the walk (a git tree 100 000 levels deep is a push of a few MB, and each level's path
/// is longer than the last).
pub const MAX_PATH_DEPTH: usize = 32;

/// Most files and directories a source lists in one repo (dot-entries are skipped without being
/// counted). Past it the whole repo is refused ([`Refusal::TooManyEntries`]), nothing read. Why
/// 100 000: repos have hundreds of files; a tree of a million empty `*.yaml` blobs is a small
/// push that would otherwise cost a list of a million paths on every reconcile.
pub const MAX_REPO_ENTRIES: usize = 100_000;

/// One file of a repo, from a directory or a git tree.
#[derive(Debug, Clone, Default)]
pub struct SourceFile {
    /// Path relative to the repo root, `/`-separated.
    pub path: String,
    /// The content, shared with the resources loaded from it (their positions are found in it).
    pub bytes: Arc<[u8]>,
    /// Set when the source did not read the content: the file is reported as an error (like a
    /// syntax error, so the repo is invalid and nothing it declares is deleted by mistake).
    pub refused: Option<Refusal>,
    /// The content's id (a git blob id) when the source knows one: [`FileCache`] reuses what a
    /// file with this path and id decoded to last time instead of parsing it again.
    pub id: Option<String>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self { path: path.into(), bytes: Arc::from(bytes.into()), refused: None, id: None }
    }

    /// A resource file whose content the source refused to read.
    pub fn refused(path: impl Into<String>, why: Refusal) -> Self {
        Self { path: path.into(), bytes: Arc::default(), refused: Some(why), id: None }
    }

    /// This file, with the id of its content (see [`SourceFile::id`]).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// What one file decoded to, kept by [`FileCache`].
#[derive(Debug, Default)]
struct FilePart {
    resources: Vec<Resource>,
    diagnostics: Vec<Diagnostic>,
    broken: Vec<ResourceKey>,
    /// [`Resource::hash`] of each of `resources` (filled by [`load_cached`] only).
    hashes: Vec<String>,
    /// What its tree cost towards [`MAX_REPO_TREE_BYTES`].
    tree: usize,
    /// Its form for [`FileCache::save`] when known: the one it was restored from, or made
    /// when a [`FileCache::moving`] load handed the resources over.
    saved: Option<SavedFile>,
}

/// Decoded files by (path, content id), so a commit that changed one file of many parses only
/// that file (the reconciler keeps one across deploys).
///
/// # Guarantees
/// A cached file gives exactly what parsing it again would: the same path and id mean the same
/// bytes, and decoding a file depends on nothing else (the repo's budgets are charged its cost
/// again, and a file that would cross them is parsed again to report it). Bounded: after each
/// [`load_cached`] only the files of that load are kept, so the cache holds at most one repo,
/// itself bounded by [`MAX_REPO_BYTES`] and [`MAX_REPO_TREE_BYTES`]. Files without an id (from a
/// directory) are never cached.
#[derive(Debug, Default)]
pub struct FileCache {
    parts: std::collections::HashMap<(String, String), FilePart>,
    /// Files restored from a previous process ([`FileCache::restore`]), turned into resources
    /// when a load asks for them.
    saved: std::collections::HashMap<(String, String), SavedFile>,
    /// Files parsed (not taken from the cache) by the last load, for tests and benchmarks.
    pub parsed_last: usize,
    /// See [`FileCache::moving`].
    moving: bool,
}

impl FileCache {
    /// Number of files held.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// A cache whose loads hand each file's resources over instead of copying them, keeping
    /// only each file's saved form: for a process that loads once and then saves (`mcpctl plan`),
    /// so the repo is not held twice. Loading again from it restores from those saved forms.
    pub fn moving() -> Self {
        Self { moving: true, ..Self::default() }
    }

    /// Forget everything (the next load parses every file).
    pub fn clear(&mut self) {
        self.parts.clear();
        self.saved.clear();
    }

    /// The files of the last load that had no problem, in a form that outlives this process
    /// (serde), for [`FileCache::restore`] in a later one. A file is left out unless each of its
    /// resources decodes back from its canonical body to itself, byte for byte and field for
    /// field, so a restored file gives exactly what decoding its text gives.
    pub fn save(&self) -> Vec<SavedFile> {
        let mut out: Vec<SavedFile> = self
            .parts
            .iter()
            .filter(|(_, part)| part.diagnostics.is_empty() && part.broken.is_empty())
            // A moving load made each saved form before handing the resources (and problems) over.
            .filter_map(|((path, id), part)| part.saved.clone().or_else(|| (!self.moving).then(|| saved_form(path, id, part)).flatten()))
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Hold `saved` (from [`FileCache::save`] of an earlier process of the same build) for the
    /// next load: a file whose path and id match is taken from it instead of being parsed.
    ///
    /// # Guarantees
    /// Only a file with the same path and id (its content's SHA-256, or a git blob id) is served,
    /// its resources decoded from their canonical bodies and their hashes computed from those
    /// bytes; positions found later parse the file's current text, which is the same text. An
    /// entry that does not decode is parsed from the text instead. Whoever restores must use the
    /// same build that saved (decoding rules change between builds).
    pub fn restore(&mut self, saved: Vec<SavedFile>) {
        self.saved.extend(saved.into_iter().map(|f| ((f.path.clone(), f.id.clone()), f)));
    }
}

/// One file of a [`FileCache`] that had no problem, kept across processes (see
/// [`FileCache::save`]): its path and content id, and its record: what its tree cost, and each
/// resource as its canonical body with where it was written.
///
/// Records are compact (lengths and numbers in binary, bodies as their bytes) and are written
/// and read whole ([`SavedFile::write_all`], [`SavedFile::read_all`]): reading a cache file only
/// finds where each file's record lies in its bytes, and a record is decoded when a load asks for
/// its file (on all cores), straight from those bytes. A file restored and saved again is
/// written by copying its record.
#[derive(Clone)]
pub struct SavedFile {
    pub path: String,
    pub id: String,
    record: Record,
}

impl std::fmt::Debug for SavedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SavedFile({} {}, {} bytes)", self.path, self.id, self.record.range.len())
    }
}

/// Where one record lies: in a buffer (made by this process), or in the cache file it was read
/// from, read again each time it is needed, so the file is never held in memory whole.
#[derive(Clone)]
struct Record {
    at: RecordAt,
    range: std::ops::Range<usize>,
}

#[derive(Clone)]
enum RecordAt {
    Memory(Arc<Vec<u8>>),
    /// The open cache file (the same file throughout: a cache is replaced by renaming a new
    /// file over it, never written in place).
    File(Arc<std::sync::Mutex<std::fs::File>>),
}

impl Record {
    /// The bytes `within` the record (clamped to it); `None` when they cannot be read.
    fn read(&self, within: std::ops::Range<usize>) -> Option<std::borrow::Cow<'_, [u8]>> {
        let end = self.range.start.checked_add(within.end)?.min(self.range.end);
        let range = self.range.start.checked_add(within.start)?.min(end)..end;
        match &self.at {
            RecordAt::Memory(buf) => buf.get(range).map(std::borrow::Cow::Borrowed),
            RecordAt::File(file) => {
                use std::io::{Read, Seek};
                let mut out = vec![0; range.len()];
                let mut file = file.lock().ok()?;
                file.seek(std::io::SeekFrom::Start(range.start as u64)).ok()?;
                file.read_exact(&mut out).ok()?;
                Some(std::borrow::Cow::Owned(out))
            }
        }
    }

    fn bytes(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.read(0..self.range.len())
    }
}

/// Reads the little-endian numbers and length-prefixed strings of the compact layout; every
/// read is bounds-checked (`None` past the end: a truncated or corrupt file is never trusted).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A `u32` length, then that many bytes.
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.chunk()?).ok()
    }
}

/// Appends `bytes` with its `u32` length before it.
fn put_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("a chunk is smaller than a repo file").to_le_bytes());
    out.extend_from_slice(bytes);
}

/// One resource of a record, as decoded from its bytes.
struct SavedResource<'a> {
    body: &'a str,
    pos: Pos,
    addr: Addr,
}

/// Address tags of the compact layout.
const ADDR_DOC: u8 = 0;
const ADDR_ITEM: u8 = 1;
const ADDR_GROUP: u8 = 2;

/// Files restored on all cores at once, per core, by [`load_cached`]: enough to keep the cores
/// busy, few enough that the window's resources are small beside the repo's.
const RESTORE_WINDOW: usize = 8;

impl SavedFile {
    /// How many resources the record says it holds, at most as many as fit in it (a corrupt
    /// count cannot reserve much; such a record is parsed from the text anyway).
    fn count(&self) -> usize {
        let head = self.record.read(8..12);
        let n = head.and_then(|n| Some(u32::from_le_bytes(n.as_ref().try_into().ok()?) as usize)).unwrap_or(0);
        n.min(self.record.range.len() / 21)
    }

    /// The record of a file: its tree cost, then per resource its position, address and body.
    fn encode(tree: usize, resources: &[(String, Pos, Addr)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + resources.iter().map(|(b, _, _)| b.len() + 24).sum::<usize>());
        out.extend_from_slice(&(tree as u64).to_le_bytes());
        out.extend_from_slice(&u32::try_from(resources.len()).expect("resources of one file").to_le_bytes());
        for (body, pos, addr) in resources {
            out.extend_from_slice(&pos.line.to_le_bytes());
            out.extend_from_slice(&pos.col.to_le_bytes());
            let (tag, a, b, kind) = match *addr {
                Addr::Doc(d) => (ADDR_DOC, d, 0, ""),
                Addr::Item(d, i) => (ADDR_ITEM, d, i, ""),
                Addr::Group(d, k, i) => (ADDR_GROUP, d, i, k.as_str()),
            };
            out.push(tag);
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
            put_chunk(&mut out, kind.as_bytes());
            put_chunk(&mut out, body.as_bytes());
        }
        out
    }

    /// The tree cost and resources of this file's record; `None` when the record is corrupt.
    fn decode(bytes: &[u8]) -> Option<(usize, Vec<SavedResource<'_>>)> {
        let mut r = Reader { bytes, at: 0 };
        let tree = usize::try_from(r.u64()?).ok()?;
        let n = r.u32()? as usize;
        // Each resource takes at least 21 bytes: a corrupt count cannot reserve much.
        let mut out = Vec::with_capacity(n.min(r.bytes.len() / 21));
        for _ in 0..n {
            let pos = Pos::new(r.u32()?, r.u32()?);
            let (tag, a, b) = (r.u8()?, r.u32()?, r.u32()?);
            let kind = r.str()?;
            let addr = match tag {
                ADDR_DOC => Addr::Doc(a),
                ADDR_ITEM => Addr::Item(a, b),
                ADDR_GROUP => Addr::Group(a, kind.parse().ok()?, b),
                _ => return None,
            };
            out.push(SavedResource { body: r.str()?, pos, addr });
        }
        (r.at == r.bytes.len()).then_some((tree, out))
    }

    /// Write `files` one after the other: path, id and record, each with its length before it.
    ///
    /// # Errors
    /// What writing to `out` returns.
    pub fn write_all(files: &[SavedFile], out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut head = Vec::new();
        for f in files {
            head.clear();
            put_chunk(&mut head, f.path.as_bytes());
            put_chunk(&mut head, f.id.as_bytes());
            head.extend_from_slice(&u32::try_from(f.record.range.len()).map_err(std::io::Error::other)?.to_le_bytes());
            out.write_all(&head)?;
            out.write_all(&f.record.bytes().ok_or_else(|| std::io::Error::other("a cache record could not be read again"))?)?;
        }
        Ok(())
    }

    /// The files [`SavedFile::write_all`] wrote into `bytes` from offset `from` on, each
    /// pointing at its record there (nothing is decoded yet, nothing copied); `None` when the
    /// bytes do not have that layout.
    pub fn read_all(bytes: Vec<u8>, from: usize) -> Option<Vec<SavedFile>> {
        let bytes = Arc::new(bytes);
        let mut r = Reader { bytes: &bytes, at: from };
        let mut out = Vec::new();
        while r.at < r.bytes.len() {
            let (path, id) = (r.str()?.to_string(), r.str()?.to_string());
            let len = r.u32()? as usize;
            let start = r.at;
            r.take(len)?;
            out.push(SavedFile { path, id, record: Record { at: RecordAt::Memory(bytes.clone()), range: start..start + len } });
        }
        Some(out)
    }

    /// [`SavedFile::read_all`] from `file`, from offset `from` on, reading only where each
    /// record lies: a record is read from the file when a load asks for it (and when it is saved
    /// again), so the file's bytes are never all in memory. The file must not be written while
    /// these are in use (a cache is replaced by renaming, which leaves an open file as it was).
    pub fn read_file(file: std::fs::File, from: u64) -> Option<Vec<SavedFile>> {
        use std::io::{Read, Seek};
        let len = file.metadata().ok()?.len();
        let mut r = std::io::BufReader::new(&file);
        r.seek(std::io::SeekFrom::Start(from)).ok()?;
        let mut at = from;
        let u32_at = |r: &mut std::io::BufReader<&std::fs::File>, at: &mut u64| -> Option<u64> {
            let mut n = [0; 4];
            r.read_exact(&mut n).ok()?;
            *at += 4;
            Some(u64::from(u32::from_le_bytes(n)))
        };
        let mut index = Vec::new();
        while at < len {
            let mut strs = [String::new(), String::new()];
            for s in &mut strs {
                let n = u32_at(&mut r, &mut at)?;
                // Bounded by the file: a corrupt length cannot allocate more than the file holds.
                if n > len - at {
                    return None;
                }
                let mut bytes = vec![0; usize::try_from(n).ok()?];
                r.read_exact(&mut bytes).ok()?;
                at += n;
                *s = String::from_utf8(bytes).ok()?;
            }
            let n = u32_at(&mut r, &mut at)?;
            if n > len - at {
                return None;
            }
            let start = usize::try_from(at).ok()?;
            index.push((strs, start..start + usize::try_from(n).ok()?));
            r.seek_relative(i64::try_from(n).ok()?).ok()?;
            at += n;
        }
        drop(r);
        let file = Arc::new(std::sync::Mutex::new(file));
        let out =
            index.into_iter().map(|([path, id], range)| SavedFile { path, id, record: Record { at: RecordAt::File(file.clone()), range } });
        Some(out.collect())
    }
}

/// The saved form of a decoded file without problems, unless one of its resources does not
/// decode back from its canonical body to itself (byte for byte and field for field).
fn saved_form(path: &str, id: &str, part: &FilePart) -> Option<SavedFile> {
    if !part.diagnostics.is_empty() || !part.broken.is_empty() {
        return None;
    }
    let resources = part
        .resources
        .iter()
        .map(|r| {
            let body = r.body();
            let node = &r.origin.as_ref()?.node;
            let exact =
                Resource::from_body(&body).is_ok_and(|back| back.metadata == r.metadata && back.spec == r.spec && back.body() == body);
            exact.then(|| (body, node.pos, node.addr()))
        })
        .collect::<Option<Vec<_>>>()?;
    let record = Arc::new(SavedFile::encode(part.tree, &resources));
    Some(SavedFile { path: path.to_string(), id: id.to_string(), record: Record { range: 0..record.len(), at: RecordAt::Memory(record) } })
}

impl SavedFile {
    /// The decoded file, its resources pointing into `f`'s text; `None` when anything does not
    /// fit (then the file is parsed).
    fn restore(&self, f: &SourceFile) -> Option<FilePart> {
        let bytes = self.record.bytes()?;
        let (tree, saved) = SavedFile::decode(&bytes)?;
        let text = FileText::new(f.bytes.clone())?;
        let file: Arc<str> = Arc::from(f.path.as_str());
        let mut resources = Vec::with_capacity(saved.len());
        let mut hashes = Vec::with_capacity(saved.len());
        for r in &saved {
            let mut res = Resource::from_body(r.body).ok()?;
            res.origin = Some(Origin { file: file.clone(), node: NodeAt::new(r.pos, text.clone(), r.addr) });
            hashes.push(crate::resource::body_hash(r.body));
            resources.push(res);
        }
        Some(FilePart { resources, diagnostics: Vec::new(), broken: Vec::new(), hashes, tree, saved: Some(self.clone()) })
    }
}

/// Why a source refused a path of the repo (a resource file, a link, a directory) without
/// reading it. Directory and git-tree sources refuse the same paths the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than [`MAX_FILE_BYTES`] (the size from file metadata or the git object header).
    TooLarge { bytes: u64 },
    /// A symbolic link (git file mode 120000). Links are not followed: where they point may
    /// be outside the repo or differ between a checkout and the commit.
    Symlink,
    /// A symbolic link of any other name whose target leaves the repo (absolute, or `..` past
    /// the root; see [`link_leaves_repo`]): what it points to, perhaps a directory of resources,
    /// is not part of the repo. Links that stay inside are harmless (their target is read under
    /// its own path) and pass.
    SymlinkOutside,
    /// Not a regular file (a FIFO, socket or device), which could block or never end.
    NotRegular,
    /// Reading it would take the repo past [`MAX_REPO_BYTES`]; `bytes` is its own size.
    RepoTooLarge { bytes: u64 },
    /// A directory deeper than [`MAX_PATH_DEPTH`] (its path ends in `/`); not entered.
    TooDeep,
    /// The repo has more than [`MAX_REPO_ENTRIES`] files and directories (the path is `.`).
    TooManyEntries,
}

/// The running totals that bound a whole repo: bytes read and bytes of tree built.
#[derive(Debug, Default, Clone, Copy)]
pub struct RepoBudget {
    read: u64,
    tree: usize,
}

impl RepoBudget {
    /// Take `bytes` from the repo's read budget, or refuse the file ([`MAX_REPO_BYTES`]).
    ///
    /// # Errors
    /// [`Refusal::RepoTooLarge`] when the file does not fit; the budget is unchanged then.
    pub fn read(&mut self, bytes: u64) -> Result<(), Refusal> {
        match self.read.checked_add(bytes) {
            Some(total) if total <= MAX_REPO_BYTES => {
                self.read = total;
                Ok(())
            }
            _ => Err(Refusal::RepoTooLarge { bytes }),
        }
    }
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Refusal::TooLarge { bytes } => format!("file is {bytes} bytes; the limit is {MAX_FILE_BYTES} bytes"),
            Refusal::Symlink => "file is a symbolic link; mcpctl does not follow links in a repo (what it declares would be silently missing): commit the file itself".into(),
            Refusal::SymlinkOutside => "symbolic link leaving the repo; mcpctl does not follow links, so what it points to (a directory of resources?) would be silently missing: copy it into the repo or remove the link".into(),
            Refusal::NotRegular => "not a regular file (FIFO, socket or device); a resource file must be a plain file".into(),
            Refusal::TooDeep => format!("directory nested deeper than {MAX_PATH_DEPTH} levels below the repo root; not read"),
            Refusal::TooManyEntries => format!("the repo has more than {MAX_REPO_ENTRIES} files and directories; nothing was read"),
            Refusal::RepoTooLarge { bytes } => format!(
                "file is {bytes} bytes and the repo's resource files before it (in path order) already take the rest of the {MAX_REPO_BYTES} bytes a repo may have; not read"
            ),
        }
    }
}

/// Whether a repo path is a resource file: `*.yaml`/`*.yml`/`*.json`, not under a dot-directory.
pub fn is_resource_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    (lower.ends_with(".yaml") || lower.ends_with(".yml") || is_json_path(&lower)) && !path.split('/').any(|part| part.starts_with('.'))
}

/// A `.json` resource file: one resource object or an array of them (as `kubectl apply -f`
/// reads). JSON is YAML 1.2's flow syntax, so the same bounded parser reads it, with positions.
fn is_json_path(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".json")
}

/// Whether a symbolic link at repo path `link` (`/`-separated) pointing at `target` (the link's
/// raw text) leaves the repo: an absolute target, or more `..` than there are directories above
/// it. Purely lexical, so a directory and a git tree decide alike.
pub fn link_leaves_repo(link: &str, target: &[u8]) -> bool {
    if target.first() == Some(&b'/') || target.contains(&0) {
        return true;
    }
    // Directories above the link, then the target's components.
    let mut depth = link.split('/').filter(|c| !c.is_empty()).count().saturating_sub(1);
    for component in target.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// What decoding a set of files produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
    /// Resources whose metadata decoded but whose spec did not: they exist, so references to
    /// them are not reported a second time as dangling.
    pub broken: Vec<ResourceKey>,
    /// [`Resource::hash`] of each of `resources`, in order, when the loader knows them
    /// ([`load_cached`] keeps them with each file); empty otherwise.
    pub hashes: Vec<String>,
}

/// Decode every file; returns the resources that decoded and the problems of those that did not.
///
/// The repo-wide limits ([`MAX_REPO_BYTES`], [`crate::document::MAX_REPO_TREE_BYTES`]) apply in
/// the order of `files` (sources sort them by path).
pub fn load(files: &[SourceFile]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut budget = RepoBudget::default();
    let all: Vec<&SourceFile> = files.iter().collect();
    for (f, part) in files.iter().zip(load_parallel(&all, false)) {
        match part {
            // The same result the sequential load gets: a file's decoding depends on the budgets
            // only through the limits, and this one stayed within them where it stands.
            Some(part) if part.diagnostics.is_empty() && fits(&budget, f, &part) => {
                budget.read(f.bytes.len() as u64).expect("checked by fits");
                budget.tree += part.tree;
                loaded.resources.extend(part.resources);
                loaded.broken.extend(part.broken);
            }
            // Problems (or a budget that ran out) are decoded again in order, exactly as before.
            _ => load_file(f, &mut loaded, &mut budget),
        }
    }
    loaded
}

/// Each file decoded on its own, with a fresh budget, on the machine's cores, with the
/// resources' hashes when `hashes` is set. `None` for refused files, which need no decoding.
fn load_parallel(files: &[&SourceFile], hashes: bool) -> Vec<Option<FilePart>> {
    on_cores(files, |f| {
        f.refused.is_none().then(|| {
            let mut loaded = Loaded::default();
            let mut budget = RepoBudget::default();
            load_file(f, &mut loaded, &mut budget);
            let hashes = if hashes { loaded.resources.iter().map(Resource::hash).collect() } else { Vec::new() };
            FilePart {
                resources: loaded.resources,
                diagnostics: loaded.diagnostics,
                broken: loaded.broken,
                hashes,
                tree: budget.tree,
                saved: None,
            }
        })
    })
}

/// `f` of each item, in order, computed on the machine's cores (items in contiguous chunks, one
/// chunk a thread).
fn on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("decoding a file does not panic")).collect()
    })
}

/// [`load`], reusing `cache` for files whose (path, id) it holds; afterwards it holds exactly
/// this load's files. The files it does not hold are decoded first, on all cores, as [`load`]
/// does; a file with problems, or one that would cross a budget where it stands, is decoded
/// again in order, so the result is the sequential one.
pub fn load_cached(files: &[SourceFile], cache: &mut FileCache) -> Loaded {
    let mut loaded = Loaded::default();
    let mut budget = RepoBudget::default();
    let mut next = std::collections::HashMap::with_capacity(files.len());
    cache.parsed_last = 0;
    if cache.moving {
        // Its parts were handed over: only their saved forms can serve.
        for (key, part) in std::mem::take(&mut cache.parts) {
            cache.saved.extend(part.saved.map(|s| (key, s)));
        }
    }
    let key_of = |f: &SourceFile| f.id.clone().filter(|_| f.refused.is_none()).map(|id| (f.path.clone(), id));
    let misses: Vec<&SourceFile> =
        files.iter().filter(|f| key_of(f).is_some_and(|k| !cache.parts.contains_key(&k) && !cache.saved.contains_key(&k))).collect();
    let mut decoded: std::collections::HashMap<&str, FilePart> =
        misses.iter().map(|f| f.path.as_str()).zip(load_parallel(&misses, true)).filter_map(|(p, part)| Some((p, part?))).collect();
    // Files restored from a saved form are decoded from it on all cores too, a window of files at
    // a time moved into `loaded` before the next is decoded, so the restored resources are not
    // held twice (once per file, once in `loaded`); one that does not restore is parsed below,
    // in order.
    let mut hits: std::collections::HashMap<&str, SavedFile> = files
        .iter()
        .filter_map(|f| key_of(f).filter(|k| !cache.parts.contains_key(k)).and_then(|k| Some((f.path.as_str(), cache.saved.remove(&k)?))))
        .collect();
    // Room for every resource at once (growing by doubling would hold up to twice the repo).
    let expected: usize = hits.values().map(SavedFile::count).sum::<usize>()
        + decoded.values().chain(cache.parts.values()).map(|p| p.resources.len()).sum::<usize>();
    loaded.resources.reserve(expected);
    loaded.hashes.reserve(expected);
    let window = RESTORE_WINDOW * std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut restored: std::collections::HashMap<&str, FilePart> = std::collections::HashMap::new();
    for (i, f) in files.iter().enumerate() {
        if i % window == 0 {
            let batch: Vec<(&SourceFile, SavedFile)> =
                files[i..(i + window).min(files.len())].iter().filter_map(|f| Some((f, hits.remove(f.path.as_str())?))).collect();
            restored = batch
                .iter()
                .map(|(f, _)| f.path.as_str())
                .zip(on_cores(&batch, |(f, saved)| saved.restore(f)))
                .filter_map(|(p, part)| Some((p, part?)))
                .collect();
        }
        let Some(key) = key_of(f) else {
            let before = loaded.resources.len();
            load_file(f, &mut loaded, &mut budget);
            let new = loaded.resources[before..].iter().map(Resource::hash).collect::<Vec<_>>();
            loaded.hashes.extend(new);
            continue;
        };
        let held = cache.parts.remove(&key).or_else(|| restored.remove(f.path.as_str()));
        let part = match held {
            Some(part) if fits(&budget, f, &part) => {
                budget.read(f.bytes.len() as u64).expect("checked by fits");
                budget.tree += part.tree;
                part
            }
            _ => {
                cache.parsed_last += 1;
                match decoded.remove(f.path.as_str()) {
                    Some(part) if part.diagnostics.is_empty() && fits(&budget, f, &part) => {
                        budget.read(f.bytes.len() as u64).expect("checked by fits");
                        budget.tree += part.tree;
                        part
                    }
                    _ => {
                        let mut one = Loaded::default();
                        let before = budget.tree;
                        load_file(f, &mut one, &mut budget);
                        let hashes = one.resources.iter().map(Resource::hash).collect();
                        FilePart {
                            resources: one.resources,
                            diagnostics: one.diagnostics,
                            broken: one.broken,
                            hashes,
                            tree: budget.tree - before,
                            saved: None,
                        }
                    }
                }
            }
        };
        let mut part = part;
        if cache.moving {
            if part.saved.is_none() {
                part.saved = saved_form(&key.0, &key.1, &part);
            }
            // Taken, not appended: the part's own buffers go now, not with the cache.
            loaded.resources.extend(std::mem::take(&mut part.resources));
            loaded.diagnostics.append(&mut part.diagnostics);
            loaded.broken.append(&mut part.broken);
            loaded.hashes.extend(std::mem::take(&mut part.hashes));
        } else {
            loaded.resources.extend(part.resources.iter().cloned());
            loaded.diagnostics.extend(part.diagnostics.iter().cloned());
            loaded.broken.extend(part.broken.iter().cloned());
            loaded.hashes.extend(part.hashes.iter().cloned());
        }
        next.insert(key, part);
    }
    cache.parts = next;
    cache.saved.clear();
    loaded
}

/// Whether a cached file still fits the repo's budgets where it now stands in path order.
fn fits(budget: &RepoBudget, f: &SourceFile, part: &FilePart) -> bool {
    budget.read.checked_add(f.bytes.len() as u64).is_some_and(|t| t <= MAX_REPO_BYTES)
        && f.bytes.len() <= MAX_FILE_BYTES
        && budget.tree + part.tree <= MAX_REPO_TREE_BYTES
}

fn load_file(f: &SourceFile, loaded: &mut Loaded, budget: &mut RepoBudget) {
    let diags = &mut loaded.diagnostics;
    let file: Arc<str> = Arc::from(f.path.as_str());
    if let Some(why) = f.refused {
        diags.push(Diagnostic::new(&file, Pos::new(1, 1), None, why.message()));
        return;
    }
    if f.bytes.len() > MAX_FILE_BYTES {
        let why = Refusal::TooLarge { bytes: f.bytes.len() as u64 };
        diags.push(Diagnostic::new(&file, Pos::new(1, 1), None, why.message()));
        return;
    }
    if let Err(why) = budget.read(f.bytes.len() as u64) {
        diags.push(Diagnostic::new(&file, Pos::new(1, 1), None, why.message()));
        return;
    }
    let text = match std::str::from_utf8(&f.bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &f.bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() as u32 + 1;
            diags.push(Diagnostic::new(
                &file,
                Pos::new(line, col),
                None,
                format!("file is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()),
            ));
            return;
        }
    };
    let json = is_json_path(&f.path);
    let docs = match document::parse_within(text, MAX_REPO_TREE_BYTES - budget.tree) {
        Ok((d, cost)) => {
            budget.tree += cost;
            d
        }
        Err(e) => {
            let syntax = if json { "JSON" } else { "YAML" };
            diags.push(Diagnostic::new(&file, e.pos, None, format!("{syntax} syntax error: {}", e.message)));
            return;
        }
    };
    let text = FileText::new(f.bytes.clone()).expect("its UTF-8 was checked above");
    let mut ctx = Ctx { file, text, out: &mut loaded.resources, diags: &mut loaded.diagnostics, broken: &mut loaded.broken };
    if json && docs.len() > 1 {
        ctx.err(docs[1].pos, None, "a JSON file holds one value: a resource object or an array of them");
        return;
    }
    // The trees are dropped with this file: resources keep only their addresses (see `NodeAt`).
    for (d, doc) in docs.iter().enumerate() {
        let d = d as u32;
        match &doc.value {
            Value::Seq(items) if json => items.iter().enumerate().for_each(|(i, item)| ctx.json_item(item, Addr::Item(d, i as u32))),
            _ => ctx.document(doc, d),
        }
    }
}

struct Ctx<'a> {
    file: Arc<str>,
    text: Arc<FileText>,
    out: &'a mut Vec<Resource>,
    diags: &'a mut Vec<Diagnostic>,
    broken: &'a mut Vec<ResourceKey>,
}

const ENVELOPE_KEYS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, subject: Option<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(&self.file, pos, subject, message));
    }

    fn document(&mut self, doc: &Node, d: u32) {
        match &doc.value {
            Value::Null => {}
            Value::Map(_) if doc.get("kind").is_some() => self.resource(doc, None, None, Addr::Doc(d)),
            Value::Map(_) if doc.get("metadata").is_some() || doc.get("spec").is_some() => self.err(doc.pos, None, "missing `kind`"),
            Value::Map(_) => self.grouped(doc, d),
            _ => self.err(doc.pos, None, "a document must be a mapping: a resource (`kind: …`) or the grouped form (`servers: […]`)"),
        }
    }

    /// One object of a JSON array: a resource with its `kind`.
    fn json_item(&mut self, item: &Node, addr: Addr) {
        match &item.value {
            Value::Map(_) if item.get("kind").is_some() => self.resource(item, None, None, addr),
            _ => self.err(item.pos, None, "each item of a JSON array must be a resource object with `kind`"),
        }
    }

    /// `servers: [...]`, `agents: [...]`, with optional `apiVersion` and a default `project`.
    fn grouped(&mut self, doc: &Node, d: u32) {
        let Value::Map(entries) = &doc.value else { return };
        let project = entries.iter().find(|e| e.key == "project").and_then(|e| e.value.as_str().map(str::to_string));
        for e in entries {
            match e.key.as_str() {
                "apiVersion" => self.check_api_version(&e.value, None),
                "project" => {
                    if e.value.as_str().is_none() {
                        self.err(e.value.pos, None, "`project` must be a string");
                    }
                }
                key => match Kind::from_group_key(key) {
                    None => {
                        let hint = did_you_mean(key, Kind::ALL.iter().map(|k| k.group_key()));
                        self.err(e.key_pos, None, format!("unknown group `{key}`{hint}"));
                    }
                    Some(kind) => match &e.value.value {
                        Value::Seq(items) => {
                            for (i, item) in items.iter().enumerate() {
                                self.resource(item, Some(kind), project.as_deref(), Addr::Group(d, kind, i as u32));
                            }
                        }
                        Value::Null => {}
                        _ => self.err(e.value.pos, None, format!("`{key}` must be a list")),
                    },
                },
            }
        }
    }

    fn check_api_version(&mut self, node: &Node, subject: Option<String>) {
        if node.as_str() != Some(API_VERSION) {
            self.err(node.pos, subject, format!("unsupported apiVersion; expected `{API_VERSION}`"));
        }
    }

    /// One resource, either standalone (`group = None`) or an item of a group.
    fn resource(&mut self, node: &Node, group: Option<Kind>, default_project: Option<&str>, addr: Addr) {
        let Some(entries) = node.as_map() else {
            self.err(node.pos, None, "a resource must be a mapping");
            return;
        };
        for e in entries {
            if !ENVELOPE_KEYS.contains(&e.key.as_str()) {
                let hint = did_you_mean(&e.key, ENVELOPE_KEYS.iter().copied());
                self.err(e.key_pos, None, format!("unknown field `{}`{hint}", e.key));
            }
        }
        // kind
        let kind = match (node.get("kind"), group) {
            (Some(k), _) => match k.as_str().and_then(Kind::from_kind_field) {
                Some(kind) if group.is_none_or(|g| g == kind) => kind,
                Some(kind) => {
                    self.err(k.pos, None, format!("kind `{kind}` inside `{}`", group.unwrap().group_key()));
                    return;
                }
                None => {
                    let given = k.as_str().unwrap_or("");
                    let hint = did_you_mean(given, Kind::ALL.iter().map(|k| k.as_str()));
                    self.err(k.pos, None, format!("unknown kind `{given}`{hint}"));
                    return;
                }
            },
            (None, Some(g)) => g,
            (None, None) => unreachable!("documents without kind are grouped"),
        };
        match node.get("apiVersion") {
            Some(v) => self.check_api_version(v, None),
            None if group.is_none() => self.err(node.pos, None, "missing `apiVersion`"),
            None => {}
        }
        // metadata
        let Some(meta_node) = node.get("metadata") else {
            self.err(node.pos, Some(kind.to_string()), "missing `metadata`");
            return;
        };
        let mut metadata: Metadata = match serde_path_to_error::deserialize(meta_node.to_json()) {
            Ok(m) => m,
            Err(e) => {
                self.serde_error(node, "metadata", e, Some(kind.to_string()));
                return;
            }
        };
        if metadata.project.is_none() && kind.scope() != crate::kind::Scope::Cluster {
            metadata.project = default_project.map(str::to_string);
        }
        let key = ResourceKey::new(kind, metadata.project.as_deref(), &metadata.name);
        let subject = Some(key.to_string());
        // spec
        let spec_json = node.get("spec").map_or(serde_json::json!({}), |s| match s.value {
            Value::Null => serde_json::json!({}),
            _ => s.to_json(),
        });
        let spec = match Spec::from_json(kind, spec_json) {
            Ok(s) => s,
            Err(e) => {
                self.serde_error(node, "spec", e, subject);
                self.broken.push(key);
                return;
            }
        };
        let origin = Origin { file: self.file.clone(), node: NodeAt::new(node.pos, self.text.clone(), addr) };
        self.out.push(Resource { metadata, spec, origin: Some(origin) });
    }

    /// Report a typed-decoding error at the position of the offending node.
    fn serde_error(&mut self, root: &Node, section: &str, e: serde_path_to_error::Error<serde_json::Error>, subject: Option<String>) {
        let mut path = vec![Seg::Key(section.to_string())];
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
                _ => {}
            }
        }
        let raw = e.inner().to_string();
        let (message, key_pos) = humanize(&raw);
        let field = path_string(&path);
        let pos = root.locate(&path, key_pos);
        let message = if path.len() > 1 || !key_pos { format!("{field}: {message}") } else { message };
        self.err(pos, subject, message);
    }
}

/// `spec.env[0].name` for a path.
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Make serde's message friendlier; the bool says whether it is about a key (unknown field).
fn humanize(raw: &str) -> (String, bool) {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let hint = did_you_mean(field, expected.iter().copied());
            let msg = if hint.is_empty() && !expected.is_empty() {
                format!("unknown field `{field}`; expected one of: {}", expected.join(", "))
            } else {
                format!("unknown field `{field}`{hint}")
            };
            return (msg, true);
        }
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        if let Some((given, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let hint = did_you_mean(given, expected.iter().copied());
            return (format!("unknown value `{given}`; expected one of: {}{hint}", expected.join(", ")), false);
        }
    }
    (raw.to_string(), false)
}

#[cfg(test)]
mod tests {
    use super::{link_leaves_repo, SourceFile};

    fn errors(files: &[SourceFile]) -> String {
        crate::check(files).map(|_| String::new()).unwrap_or_else(|d| d.to_string())
    }

    /// `load` decodes files on several threads; the result must be the one file-by-file decoding
    /// in path order gives (what `load_cached` does on an empty cache), problems included.
    #[test]
    fn loading_on_threads_gives_the_sequential_result() {
        let mut files: Vec<SourceFile> = (0..40)
            .map(|i| {
                let body = match i {
                    7 => "kind: Server\nmetadata: {name: bad\n".to_string(),
                    13 => "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {name: s13}\nspec: {commandd: x}\n".to_string(),
                    _ => format!("apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: u{i}}}\nspec: {{email: u{i}@example.com}}\n---\napiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: v{i}}}\n"),
                };
                SourceFile::new(format!("f{i:02}.yaml"), body)
            })
            .collect();
        files.push(SourceFile::refused("z.yaml", super::Refusal::Symlink));
        let show = |l: super::Loaded| {
            let res: Vec<(String, Option<String>, String)> =
                l.resources.iter().map(|r| (r.key().to_string(), r.source(), r.body())).collect();
            let diags: Vec<String> = l.diagnostics.iter().map(ToString::to_string).collect();
            (res, diags, l.broken)
        };
        let threaded = show(super::load(&files));
        let sequential = show(super::load_cached(&files, &mut super::FileCache::default()));
        assert_eq!(threaded.0.len(), 76);
        assert_eq!(threaded.1.len(), 3, "{:?}", threaded.1);
        assert_eq!(threaded, sequential);
    }

    /// A cache saved by one process and restored in another serves exactly what decoding gives
    /// (resources, sources, hashes, and error positions inside restored files, found by parsing
    /// their text again), and never a file whose content changed.
    #[test]
    fn a_restored_cache_gives_what_decoding_gives_and_never_a_stale_file() {
        use sha2::Digest;
        let file = |path: &str, text: &str| SourceFile::new(path, text).with_id(hex::encode(sha2::Sha256::digest(text.as_bytes())));
        let agent = "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {name: p}\n---\napiVersion: mcpctl.io/v1\nkind: Agent\nmetadata:\n  name: x\n  project: p\nspec:\n  llm: gpt\n";
        let llm =
            |name: &str| format!("apiVersion: mcpctl.io/v1\nkind: Llm\nmetadata: {{name: {name}}}\nspec: {{provider: openai, model: m}}\n");
        let grouped = "project: p\nprompts:\n  - metadata: {name: a}\n    spec: {content: hi}\n  - metadata: {name: b}\n    spec: {content: \"-0.0\", priority: 2}\n";
        let json = "[{\"apiVersion\": \"mcpctl.io/v1\", \"kind\": \"User\", \"metadata\": {\"name\": \"ann\"}}]";
        let v1 = vec![file("a.yaml", agent), file("b.yaml", &llm("gpt")), file("c.yaml", grouped), file("d.json", json)];
        let show = |r: Result<crate::DesiredState, crate::Diagnostics>| {
            r.map(|s| {
                s.resources()
                    .iter()
                    .zip(s.hashes())
                    .map(|(r, h)| (r.key().to_string(), r.source(), r.body(), h.clone()))
                    .collect::<Vec<_>>()
            })
            .map_err(|d| d.to_string())
        };
        let mut first = super::FileCache::default();
        assert_eq!(show(crate::check_cached(&v1, &mut first)), show(crate::check(&v1)));
        let mut saved = Vec::new();
        super::SavedFile::write_all(&first.save(), &mut saved).unwrap();
        // Another process: the same files come from the saved copy, nothing is parsed.
        let restore = |bytes: &[u8]| {
            let mut c = super::FileCache::default();
            c.restore(super::SavedFile::read_all(bytes.to_vec(), 0).unwrap());
            c
        };
        // The same records read from a file (after a header of 3 bytes), each only when needed.
        let in_file = |bytes: &[u8]| {
            let path = std::env::temp_dir().join(format!("mcpctl-saved-{}-{}", std::process::id(), bytes.len()));
            std::fs::write(&path, [b"hd\n", bytes].concat()).unwrap();
            let files = super::SavedFile::read_file(std::fs::File::open(&path).unwrap(), 3);
            let _ = std::fs::remove_file(&path);
            files
        };
        let restored = || restore(&saved);
        let mut second = restored();
        let got = show(crate::check_cached(&v1, &mut second));
        assert_eq!((second.parsed_last, got.as_ref().map(Vec::len)), (0, Ok(6)));
        assert_eq!(got, show(crate::check(&v1)));
        let mut from_file = super::FileCache::moving();
        from_file.restore(in_file(&saved).unwrap());
        assert_eq!(show(crate::check_cached(&v1, &mut from_file)), got);
        assert_eq!(from_file.parsed_last, 0);
        let mut again = Vec::new();
        super::SavedFile::write_all(&from_file.save(), &mut again).unwrap();
        assert_eq!(again, saved, "records read from the file are saved again as they were");
        // A changed file is parsed, never served; an error inside a restored file is placed by
        // parsing its text again.
        let v2 = vec![v1[0].clone(), file("b.yaml", &llm("other")), v1[2].clone(), v1[3].clone()];
        let mut third = restored();
        let got = show(crate::check_cached(&v2, &mut third));
        assert_eq!(third.parsed_last, 1);
        assert_eq!(got, show(crate::check(&v2)));
        let err = got.unwrap_err();
        assert!(err.contains("a.yaml:11:8: Agent/p/x: Llm `gpt` not found"), "{err}");
        // A saved entry that no longer decodes is parsed from the text instead.
        let edit = |from: &[u8], to: &[u8]| {
            let at = saved.windows(from.len()).position(|w| w == from).expect("in the saved bytes");
            let mut edited = saved.clone();
            edited[at..at + from.len()].copy_from_slice(to);
            edited
        };
        let mut fourth = restore(&edit(b"\"provider\":\"openai\"", b"\"provider\":7       "));
        assert_eq!(show(crate::check_cached(&v1, &mut fourth)), show(crate::check(&v1)));
        assert_eq!(fourth.parsed_last, 1);
        // So is one whose record is cut short or longer than it says, or whose address is not
        // one; bytes that are not records at all are not read.
        for (at, by) in [(8, 1u8), (20, 7), (29, 1)] {
            let mut edited = saved.clone();
            let record = saved.windows(3).position(|w| w == b"c.y").expect("c.yaml's record") + 6 + 4 + 64 + 4;
            edited[record + at] = edited[record + at].wrapping_add(by);
            for files in [in_file(&edited), super::SavedFile::read_all(edited, 0)].into_iter().flatten() {
                let mut c = super::FileCache::default();
                c.restore(files);
                assert_eq!(show(crate::check_cached(&v1, &mut c)), show(crate::check(&v1)));
                assert!(c.parsed_last >= 1);
            }
        }
        assert!(super::SavedFile::read_all(b"\x05\0\0\0ab".to_vec(), 0).is_none());
        assert!(in_file(b"\x05\0\0\0ab").is_none());
        assert!(in_file(&saved[..saved.len() - 1]).is_none(), "a cut file is not read");
    }

    #[test]
    fn merge_keys_share_defaults_and_errors_point_into_them() {
        let text = "servers:\n  - metadata: {name: a}\n    spec: &d\n      command: mcp-server-time\n      description: shared\n  - metadata: {name: b}\n    spec:\n      <<: *d\n      description: own\n";
        let state = crate::check(&[SourceFile::new("s.yaml", text)]).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(state.len(), 2);
        let b = state.resolve(crate::Kind::Server, "b", None).unwrap();
        assert_eq!(b.to_json()["spec"]["description"], "own");
        assert_eq!(b.to_json()["spec"]["command"], "mcp-server-time");
        // A wrong field merged in is reported where it was written, in the defaults.
        let bad = "servers:\n  - metadata: {name: a}\n    spec: &d\n      commandd: x\n  - metadata: {name: b}\n    spec:\n      <<: *d\n";
        let err = errors(&[SourceFile::new("s.yaml", bad)]);
        assert!(err.contains("s.yaml:4:7: Server/b: spec.commandd: unknown field `commandd`"), "{err}");
    }

    #[test]
    fn json_files_hold_one_resource_or_an_array_with_positions() {
        let one =
            r#"{"apiVersion": "mcpctl.io/v1", "kind": "Server", "metadata": {"name": "time"}, "spec": {"command": "mcp-server-time"}}"#;
        let many = "[\n  {\"apiVersion\": \"mcpctl.io/v1\", \"kind\": \"Project\", \"metadata\": {\"name\": \"p\"}},\n\t{\"apiVersion\":\"mcpctl.io/v1\",\"kind\":\"User\",\"metadata\":{\"name\":\"ann\"}}\n]\n";
        let state = crate::check(&[SourceFile::new("a.json", one), SourceFile::new("b/list.JSON", many)]).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(state.len(), 3);
        assert_eq!(state.resolve(crate::Kind::User, "ann", None).unwrap().source().unwrap(), "b/list.JSON:3:2");
        assert!(super::is_resource_path("x/y.json") && !super::is_resource_path(".x/y.json"));
        // Errors carry positions: a wrong type, a syntax error, a non-resource item.
        let bad = "{\"apiVersion\": \"mcpctl.io/v1\", \"kind\": \"Server\",\n \"metadata\": {\"name\": \"t\"}, \"spec\": {\"command\": 3}}";
        let err = errors(&[SourceFile::new("t.json", bad)]);
        assert!(err.starts_with("t.json:2:49: Server/t: spec.command:"), "{err}");
        let err = errors(&[SourceFile::new("t.json", "{\"kind\": \"Server\",\n \"metadata\": {]")]);
        assert!(err.starts_with("t.json:2:") && err.contains("JSON syntax error"), "{err}");
        let err = errors(&[SourceFile::new("t.json", "[1]")]);
        assert_eq!(err, "t.json:1:2: each item of a JSON array must be a resource object with `kind`");
    }

    #[test]
    fn links_leave_the_repo_by_absolute_targets_or_too_many_dot_dots() {
        for (link, target, leaves) in [
            ("a.yaml", "b.yaml", false),
            ("dir/link", "../b", false),
            ("dir/link", "../../b", true),
            ("dir/sub/link", "./../x/../../y", false),
            ("dir/sub/link", "../../..", true),
            ("link", "..", true),
            ("link", "/etc", true),
            ("link", "a/../../b", true),
            ("link", "", false),
        ] {
            assert_eq!(link_leaves_repo(link, target.as_bytes()), leaves, "{link} -> {target}");
        }
    }
}
