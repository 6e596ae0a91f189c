//! "Did you mean …?" suggestions for misspelt names.

/// ` (did you mean `x`?)` for the closest candidate, or an empty string. Among equally close
/// candidates the alphabetically first wins, so the hint does not depend on the order the
/// candidates come in (a hash map's, often; found by the `yaml_load` fuzz target).
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given_lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_close_names_only() {
        assert_eq!(super::did_you_mean("comand", ["command", "args"]), " (did you mean `command`?)");
        assert_eq!(super::did_you_mean("zzz", ["command", "args"]), "");
        // A tie is broken by name, whatever the order of the candidates.
        assert_eq!(super::did_you_mean("othst", ["otheb", "other"]), " (did you mean `otheb`?)");
        assert_eq!(super::did_you_mean("othst", ["other", "otheb"]), " (did you mean `otheb`?)");
    }
}
