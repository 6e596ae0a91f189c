//! The `plaintext` backend's own storage: values migrated onto it are sealed with age to the
//! installation's X25519 recipient (derived from its identity file) before they reach the
//! runtime database, so the database never holds a plaintext value.

use std::io::Write;
use std::str::FromStr;

/// The recipient of the first X25519 identity in an identity file's text.
pub fn recipient_of(identity_text: &str) -> Option<age::x25519::Recipient> {
    identity_text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .find_map(|l| age::x25519::Identity::from_str(l).ok())
        .map(|i| i.to_public())
}

/// `value` encrypted to `recipient`, ASCII-armored.
///
/// # Errors
/// Only on an internal age failure (its message, never the value).
pub fn seal(recipient: &age::x25519::Recipient, value: &str) -> Result<String, String> {
    let enc = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).map_err(|e| e.to_string())?;
    let mut w = enc.wrap_output(armor).map_err(|e| e.to_string())?;
    w.write_all(value.as_bytes()).map_err(|e| e.to_string())?;
    w.finish().and_then(|a| a.finish()).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}
