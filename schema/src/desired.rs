//! A validated desired state: resources sorted by key with an index, plus its content hash.

use std::collections::HashMap;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::kind::{Kind, Scope};
use crate::resource::{Resource, ResourceKey};

/// Resources that passed validation. Everything here can be trusted by the rest of mcpctl.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    resources: Vec<Resource>,
    index: HashMap<ResourceKey, usize>,
    /// [`Resource::hash`] of each resource, in `resources` order; computed once, on first use
    /// (the revision and the plan both need them).
    hashes: OnceLock<Vec<String>>,
}

impl DesiredState {
    /// Build from resources (assumed validated, keys unique), sorted in dependency order.
    pub fn new(mut resources: Vec<Resource>) -> Self {
        resources.sort_by_cached_key(Resource::key);
        let index = resources.iter().enumerate().map(|(i, r)| (r.key(), i)).collect();
        Self { resources, index, hashes: OnceLock::new() }
    }

    /// [`DesiredState::new`] with the [`Resource::hash`] of each resource already known
    /// (`hashes[i]` is the hash of `resources[i]`), e.g. kept with a cached file.
    pub fn with_hashes(resources: Vec<Resource>, hashes: Vec<String>) -> Self {
        assert_eq!(resources.len(), hashes.len(), "one hash per resource");
        let mut pairs: Vec<(Resource, String)> = resources.into_iter().zip(hashes).collect();
        pairs.sort_by_cached_key(|(r, _)| r.key());
        let (resources, hashes): (Vec<Resource>, Vec<String>) = pairs.into_iter().unzip();
        let index = resources.iter().enumerate().map(|(i, r)| (r.key(), i)).collect();
        Self { resources, index, hashes: OnceLock::from(hashes) }
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
        self.index.get(key).map(|i| &self.resources[*i])
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
            h.update(r.key().to_string().as_bytes());
            h.update(b"\0");
            h.update(body_hash.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}
