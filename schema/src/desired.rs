//! A validated desired state: resources sorted by key with an index, plus its content hash.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::kind::{Kind, Scope};
use crate::resource::{Resource, ResourceKey};

/// Resources that passed validation. Everything here can be trusted by the rest of mcpctl.
///
/// Resources are held sorted by key (keys are unique), which is also how they are looked up (a
/// binary search on borrowed keys: no index to build, no key allocated per resource).
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    resources: Vec<Resource>,
    /// [`Resource::hash`] of each resource, in `resources` order; computed once, on first use
    /// (the revision and the plan both need them).
    hashes: OnceLock<Vec<String>>,
}

impl DesiredState {
    /// Build from resources (assumed validated, keys unique), sorted in dependency order.
    pub fn new(mut resources: Vec<Resource>) -> Self {
        let order = key_order(&resources);
        permute(&mut resources, order);
        Self { resources, hashes: OnceLock::new() }
    }

    /// [`DesiredState::new`] with the [`Resource::hash`] of each resource already known
    /// (`hashes[i]` is the hash of `resources[i]`), e.g. kept with a cached file.
    pub fn with_hashes(resources: Vec<Resource>, hashes: Vec<String>) -> Self {
        assert_eq!(resources.len(), hashes.len(), "one hash per resource");
        let (mut resources, mut hashes) = (resources, hashes);
        let order = key_order(&resources);
        permute(&mut hashes, order.clone());
        permute(&mut resources, order);
        Self { resources, hashes: OnceLock::from(hashes) }
    }

    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    pub fn into_resources(self) -> Vec<Resource> {
        self.resources
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&Resource> {
        self.position(key).map(|i| &self.resources[i])
    }

    /// The [`Resource::hash`] of the resource at `key`, if there is one.
    pub fn hash_of(&self, key: &ResourceKey) -> Option<&str> {
        self.position(key).map(|i| self.hashes()[i].as_str())
    }

    /// Where the resource at `key` is in [`DesiredState::resources`].
    fn position(&self, key: &ResourceKey) -> Option<usize> {
        self.resources.binary_search_by(|r| r.key_parts().cmp(&key.parts())).ok()
    }

    /// Resolve a reference from a resource in `from` project (project first, then global).
    pub fn resolve(&self, kind: Kind, name: &str, from: Option<&str>) -> Option<&Resource> {
        if let (Some(p), Scope::Project | Scope::Either) = (from, kind.scope()) {
            if let Some(r) = self.get(&ResourceKey::new(kind, Some(p), name)) {
                return Some(r);
            }
        }
        self.get(&ResourceKey::new(kind, None, name))
    }

    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(move |r| r.kind() == kind)
    }

    /// The effective spec of a `Server` resource: its own, or its template instantiated.
    /// `None` for another kind or a dangling template (which validation rejects).
    pub fn server_spec(&self, res: &Resource) -> Option<crate::spec::ServerSpec> {
        let crate::resource::Spec::Server(s) = &res.spec else { return None };
        match &s.from_template {
            None => Some(s.clone()),
            Some(t) => match self.resolve(Kind::Template, &t.name, None) {
                Some(Resource { spec: crate::resource::Spec::Template(tpl), .. }) => Some(crate::template::instantiate(tpl, t)),
                _ => None,
            },
        }
    }

    /// The SHA-256 of each resource's canonical body ([`Resource::hash`]), in the order of
    /// [`DesiredState::resources`]. Computed on first call, then kept.
    pub fn hashes(&self) -> &[String] {
        self.hashes.get_or_init(|| self.resources.iter().map(Resource::hash).collect())
    }

    /// SHA-256 over every resource's key and canonical body: the revision of a state that does
    /// not come from a git commit.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for (r, body_hash) in self.resources.iter().zip(self.hashes()) {
            // The bytes of `r.key().to_string()`, without building it.
            let (kind, project, name) = r.key_parts();
            h.update(kind.as_str().as_bytes());
            h.update(b"/");
            if !project.is_empty() {
                h.update(project.as_bytes());
                h.update(b"/");
            }
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(body_hash.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

/// The indices of `resources` in key order.
fn key_order(resources: &[Resource]) -> Vec<usize> {
    let mut keys: Vec<SortKey<'_>> = resources.iter().enumerate().map(|(i, r)| SortKey::new(r, i)).collect();
    keys.sort_unstable_by(SortKey::cmp);
    keys.into_iter().map(|k| k.index).collect()
}

/// A resource's key as sorted: compares as [`Resource::key_parts`] does, but mostly without
/// reading the strings (a sort of 100,000 resources by their parts spent most of its time in
/// `memcmp` on short strings behind pointers). Nothing is allocated; only these move.
struct SortKey<'a> {
    kind: crate::Kind,
    project: Prefixed<'a>,
    name: Prefixed<'a>,
    index: usize,
}

/// A string and its first 16 bytes as a big-endian number, zero-padded.
struct Prefixed<'a> {
    head: u128,
    all: &'a str,
}

impl<'a> Prefixed<'a> {
    const HEAD: usize = 16;

    fn new(all: &'a str) -> Self {
        let mut b = [0u8; Self::HEAD];
        let n = all.len().min(Self::HEAD);
        b[..n].copy_from_slice(&all.as_bytes()[..n]);
        Self { head: u128::from_be_bytes(b), all }
    }

    /// The order of the strings. Heads that differ order them (at the first differing byte both
    /// have a byte, or the shorter one ended: zero, below any byte it could be compared with
    /// unless that byte is a zero, and then the heads do not differ there); equal heads of equal
    /// strings no longer than the head mean equal strings; anything else compares the strings.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head.cmp(&other.head).then_with(|| {
            if self.all.len() == other.all.len() && self.all.len() <= Self::HEAD {
                std::cmp::Ordering::Equal
            } else {
                self.all.cmp(other.all)
            }
        })
    }
}

impl<'a> SortKey<'a> {
    fn new(r: &'a Resource, index: usize) -> Self {
        let (kind, project, name) = r.key_parts();
        Self { kind, project: Prefixed::new(project), name: Prefixed::new(name), index }
    }

    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.kind.cmp(&other.kind).then_with(|| self.project.cmp(&other.project)).then_with(|| self.name.cmp(&other.name))
    }
}

/// Put `items` in `order` in place: the item at `order[i]` moves to `i`. In place, one cycle
/// of the permutation at a time, so the items are never held twice (resources are large).
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    const DONE: usize = usize::MAX;
    for start in 0..items.len() {
        let mut at = start;
        while order[at] != DONE {
            let from = order[at];
            order[at] = DONE;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::resource::{Metadata, Resource, Spec};
    use crate::spec::UserSpec;

    fn user(project: &str, name: &str) -> Resource {
        let metadata =
            Metadata { name: name.to_string(), project: Some(project.to_string()).filter(|p| !p.is_empty()), ..Default::default() };
        Resource { metadata, spec: Spec::User(UserSpec::default()), origin: None }
    }

    proptest! {
        /// The state's order is the keys' order, and every key is found, for names and projects
        /// around the 16 bytes the sort compares as numbers (shared heads, `\0`, longer tails).
        #[test]
        fn resources_are_in_key_order_and_found_by_key(parts in proptest::collection::btree_set(("(a{0,17}|ab\\x00?)", "(x{14,18}[a-c\\x00]{0,2}|[a-c]{0,3})"), 0..40), seed in any::<u64>()) {
            let mut resources: Vec<Resource> = parts.iter().map(|(p, n)| user(p, n)).collect();
            // Any input order.
            let len = resources.len().max(1) as u64;
            for i in 0..resources.len() {
                resources.swap(i, (seed.wrapping_mul(i as u64 + 7) % len) as usize);
            }
            let hashes: Vec<String> = resources.iter().map(|r| r.key().to_string()).collect();
            let state = super::DesiredState::with_hashes(resources.clone(), hashes);
            let mut want: Vec<_> = resources.iter().map(Resource::key).collect();
            want.sort();
            let got: Vec<_> = state.resources().iter().map(Resource::key).collect();
            prop_assert_eq!(&got, &want);
            let carried: Vec<String> = state.hashes().to_vec();
            prop_assert_eq!(carried, want.iter().map(ToString::to_string).collect::<Vec<_>>());
            for k in &want {
                prop_assert_eq!(state.get(k).map(Resource::key), Some(k.clone()));
            }
            prop_assert!(state.get(&crate::ResourceKey::new(crate::Kind::User, Some("zz"), "zz")).is_none());
            prop_assert_eq!(super::DesiredState::new(resources).resources().iter().map(Resource::key).collect::<Vec<_>>(), want);
        }
    }
}
