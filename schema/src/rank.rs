//! BM25 ranking of a few short documents (a project's prompts) against a query (the task a gated
//! session announces in `begin_session`). Pure and deterministic: no I/O, no randomness, ties
//! broken by name.
//!
//! # Model
//! Okapi BM25 (k1 = [`K1`], b = [`B`]) over one bag of words per document, fields weighted by
//! repetition: a word of the name counts [`NAME_WEIGHT`] times, of the description
//! [`DESCRIPTION_WEIGHT`] times, of the content once. Words are lower-cased runs of letters and
//! digits of two or more characters (`-`/`_` split names: `backup-policy` is `backup policy`),
//! English stop words dropped,
//! and a light suffix strip (`-ing`, `-ed`, `-s`) so `restarting` meets `restart`.

/// Term-frequency saturation.
pub const K1: f64 = 1.2;
/// Length normalisation.
pub const B: f64 = 0.75;
/// Times a word of a document's name counts.
pub const NAME_WEIGHT: usize = 3;
/// Times a word of a document's description counts.
pub const DESCRIPTION_WEIGHT: usize = 2;

/// Words that say nothing about a task.
const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "before", "by", "can", "do", "does", "for", "from", "has", "have",
    "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "need", "not", "of", "on", "or", "our", "please", "should", "so",
    "some", "that", "the", "their", "them", "then", "there", "this", "to", "up", "use", "want", "was", "we", "what", "when", "where",
    "which", "who", "will", "with", "you", "your",
];

/// One document to rank.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub content: &'a str,
}

/// The words of `text` as the ranking compares them.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "s"] {
        if let Some(base) = w.strip_suffix(suffix) {
            if base.chars().count() >= 3 && !(suffix == "s" && base.ends_with('s')) {
                return base.to_string();
            }
        }
    }
    w.to_string()
}

/// Indices of the documents that share a word with `query`, best first, with their scores.
/// Documents sharing none are left out; equal scores come in name order.
pub fn rank(query: &str, docs: &[Doc<'_>]) -> Vec<(usize, f64)> {
    let mut terms = words(query);
    terms.sort();
    terms.dedup();
    let bags: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            let mut bag = Vec::new();
            for (text, weight) in [(d.name, NAME_WEIGHT), (d.description, DESCRIPTION_WEIGHT), (d.content, 1)] {
                for w in words(text) {
                    bag.extend(std::iter::repeat_n(w, weight));
                }
            }
            bag
        })
        .collect();
    if docs.is_empty() || terms.is_empty() {
        return Vec::new();
    }
    let n = docs.len() as f64;
    let avg_len = (bags.iter().map(Vec::len).sum::<usize>() as f64 / n).max(1.0);
    let mut scored: Vec<(usize, f64)> = bags
        .iter()
        .enumerate()
        .map(|(i, bag)| {
            let len = bag.len() as f64;
            let score: f64 = terms
                .iter()
                .map(|t| {
                    let tf = bag.iter().filter(|w| *w == t).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let holders = bags.iter().filter(|b| b.contains(t)).count() as f64;
                    let idf = (1.0 + (n - holders + 0.5) / (holders + 0.5)).ln();
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len))
                })
                .sum();
            (i, score)
        })
        .filter(|(_, s)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| docs[a.0].name.cmp(docs[b.0].name)));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Doc<'static>> {
        vec![
            Doc { name: "backup-policy", description: "How backups of the NAS are kept", content: "Snapshots nightly; keep 30 days." },
            Doc {
                name: "restart-rules",
                description: "Restarting services",
                content: "Ask before restarting anything. Never power off the NAS.",
            },
            Doc { name: "style", description: "", content: "Answer briefly. Name every tool you call." },
        ]
    }

    fn names(query: &str) -> Vec<&'static str> {
        let d = docs();
        rank(query, &d).into_iter().map(|(i, _)| d[i].name).collect()
    }

    #[test]
    fn words_are_lowered_split_stemmed_and_stop_words_dropped() {
        assert_eq!(words("Restarting the backup-policy's services_now"), ["restart", "backup", "policy", "service", "now"]);
        assert_eq!(words("is the class"), ["class"]);
    }

    #[test]
    fn the_most_specific_documents_come_first() {
        assert_eq!(names("check last night's backups"), ["backup-policy"]);
        assert_eq!(names("restart the media server"), ["restart-rules"]);
        // "NAS" is in two documents: the one whose name and description also match wins.
        assert_eq!(names("NAS backup"), ["backup-policy", "restart-rules"]);
        assert_eq!(names("which tool should I call"), ["style"]);
        assert!(names("the of and").is_empty());
        assert!(names("kubernetes").is_empty());
    }

    #[test]
    fn equal_scores_come_in_name_order() {
        let d = [Doc { name: "b", description: "", content: "disk" }, Doc { name: "a", description: "", content: "disk" }];
        assert_eq!(rank("disk", &d).into_iter().map(|(i, _)| d[i].name).collect::<Vec<_>>(), ["a", "b"]);
    }
}
