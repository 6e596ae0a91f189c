//! "Did you mean …?" suggestions for misspelt names.

/// ` (did you mean `x`?)` for the closest candidate, or an empty string.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given_lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_close_names_only() {
        assert_eq!(super::did_you_mean("comand", ["command", "args"]), " (did you mean `command`?)");
        assert_eq!(super::did_you_mean("zzz", ["command", "args"]), "");
    }
}
