//! Fuzz target: the YAML loader and validation (`schema::check`) on one file of arbitrary bytes.
//! Oracle: no panic, and the verdict (the state or every diagnostic) is the same on a second run.

/// One input through the loader.
pub fn run(data: &[u8]) {
    let files = [schema::SourceFile::new("fuzz.yaml", data.to_vec())];
    let verdict = |r: Result<schema::DesiredState, schema::Diagnostics>| match r {
        Ok(state) => format!("ok {}", state.len()),
        Err(d) => d.to_string(),
    };
    let first = verdict(schema::check(&files));
    assert_eq!(first, verdict(schema::check(&files)), "the loader is not deterministic");
}
