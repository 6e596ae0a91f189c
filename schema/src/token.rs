//! Bearer token formats shared by the CLI (which mints them) and the gateway (which looks them
//! up): the `mcpctl_pat_` / `mcpctl_usr_` prefixes and the `sha256:<hex>` digest stored in git.
//! Pure: minting (which needs randomness) lives in the CLI.

use sha2::{Digest, Sha256};

/// Prefix of an McpToken (one project's MCP endpoint).
pub const MCP_TOKEN_PREFIX: &str = "mcpctl_pat_";
/// Prefix of a User's login token (`mcpctl login`, the REST API).
pub const USER_TOKEN_PREFIX: &str = "mcpctl_usr_";
/// Longest `prefix` kept in git (the token's first characters, to recognise it in logs).
pub const MAX_PREFIX_LEN: usize = 24;
/// Characters of the random part kept in `prefix` after the `mcpctl_…_` marker.
pub const PREFIX_RANDOM_CHARS: usize = 8;

/// `sha256:<64 lower-case hex>` of a raw token, as `McpToken.spec.hash` and
/// `User.spec.tokens[].hash` hold it.
pub fn hash(raw: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
}

/// Whether `s` has the form [`hash`] produces.
pub fn is_hash(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or("");
    h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The `prefix` stored for a raw token: its marker plus [`PREFIX_RANDOM_CHARS`] characters.
pub fn prefix_of(raw: &str) -> String {
    let marker = [MCP_TOKEN_PREFIX, USER_TOKEN_PREFIX].into_iter().find(|p| raw.starts_with(p)).map_or(0, str::len);
    raw.chars().take(marker + PREFIX_RANDOM_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_prefixes() {
        let h = hash("mcpctl_usr_abcdef");
        assert!(is_hash(&h), "{h}");
        assert_ne!(h, hash("mcpctl_usr_abcdeg"));
        assert!(!is_hash("sha256:ABC") && !is_hash(&h[7..]) && !is_hash(&h.to_uppercase()));
        assert_eq!(prefix_of("mcpctl_usr_abcdefghij"), "mcpctl_usr_abcdefgh");
        assert_eq!(prefix_of("mcpctl_pat_xy"), "mcpctl_pat_xy");
        assert!(prefix_of("mcpctl_usr_abcdefgh").len() <= MAX_PREFIX_LEN);
    }
}
