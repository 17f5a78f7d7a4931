//! Revision algebra: how revision ids are made, and which of a document's leaves writes build on.
//!
//! A revision id is `N-hash`, N the generation (1 for a document's first revision, the parent's plus one after).
//! CouchDB makes the hash itself from the body; Replikit writes with `new_edits: false` and names revisions with
//! [`rev_hash`] of what makes the write what it is (its idempotency key and its parent), so every attempt of one
//! write names the same revision, and a retry can tell its own revision in a leaf's history.

use crate::core::document::{Doc, Version};

/// A revision hash (32 hex digits, as CouchDB's) derived from `parts`: FNV-1a 64 twice, with two offset bases.
/// Not cryptographic; it only has to make distinct writes' revisions distinct and equal writes' equal.
pub fn rev_hash(parts: &[&str]) -> String {
    let mut out = String::with_capacity(32);
    for basis in [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64] {
        let mut h = basis;
        for part in parts {
            for b in part.bytes().chain([0xff]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// The generation of a write's revision over `parent` (None: the document's first): `N+1` over a revision, 1 over
/// no revision (none, or a counter); None over a revision of the last generation, which can have no child.
pub(super) fn child_generation(parent: Option<&Version>) -> Option<u64> {
    match parent {
        Some(p) if p.rev_parts().is_some() => p.child_generation(),
        _ => Some(1),
    }
}

/// The hash of the revision a write with `key` makes over `parent`. It covers the parent, so one key over two
/// parents is two revisions, never one id under two parents.
pub(super) fn child_hash(parent: Option<&Version>, key: &str) -> String {
    rev_hash(&[key, &parent.map(Version::to_string).unwrap_or_default()])
}

/// What a child of `parent` says of its place: its generation (`N+1`) and its parent's hash, the two ends of its
/// `_revisions`; None unless `parent` is a revision that can have a child (not of the last generation).
pub(super) fn child_link(parent: &Version) -> Option<(u64, &str)> {
    let (_, hash) = parent.rev_parts()?;
    Some((parent.child_generation()?, hash))
}

/// One leaf of a document's revision tree, as `open_revs=all&revs=true` gives it: what writes build on.
#[derive(Debug)]
pub(super) struct Leaf {
    pub(super) rev: Version,
    /// None for a tombstone.
    pub(super) doc: Option<Doc>,
    /// `_revisions.ids`: this revision's hash, then its ancestors' (newest first).
    pub(super) history: Vec<String>,
}

impl Leaf {
    fn generation(&self) -> u64 {
        self.rev.rev_parts().map_or(0, |(g, _)| g)
    }

    /// Whether a revision in this leaf's history was written with `key` (its hash is `hash(key, parent)`).
    pub(super) fn written_with(&self, key: &str) -> bool {
        let top = self.generation();
        self.history.iter().enumerate().any(|(i, hash)| {
            // `history[i]` is of generation `top - i`; none is below 1 (`wire::parse_leaves` refuses such a history).
            let Some(generation) = top.checked_sub(i as u64).filter(|g| *g >= 1) else {
                return false;
            };
            let parent = match self.history.get(i + 1) {
                Some(p) if generation > 1 => format!("{}-{p}", generation - 1),
                None if generation == 1 => String::new(),
                _ => return false, // the history was stemmed here, or goes on below generation 1
            };
            *hash == rev_hash(&[key, &parent])
        })
    }
}

/// CouchDB's winner: among live leaves the highest generation, then the highest revision id.
pub(super) fn winner(leaves: &[Leaf]) -> Option<&Leaf> {
    leaves.iter().filter(|l| l.doc.is_some()).max_by(|a, b| {
        let key = |l: &Leaf| (l.generation(), l.rev.rev_parts().map(|(_, h)| h.to_string()).unwrap_or_default());
        key(a).cmp(&key(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(rev: &str, history: &[&str]) -> Leaf {
        Leaf { rev: Version::Rev(rev.into()), doc: None, history: history.iter().map(|h| h.to_string()).collect() }
    }

    #[test]
    fn a_history_is_searched_down_to_generation_1_and_no_further() {
        let first = rev_hash(&["k", ""]);
        let second = rev_hash(&["k", &format!("1-{first}")]);
        assert!(leaf(&format!("2-{second}"), &[&second, &first]).written_with("k"));
        assert!(leaf(&format!("1-{first}"), &[&first]).written_with("k"));
        // More ancestors than generations: the ones below generation 1 were never named, and nothing underflows.
        assert!(!leaf("1-x", &["x", "y", "z"]).written_with("k"));
        assert!(!leaf("2-x", &["x", "y", "z", "w"]).written_with("k"));
    }

    #[test]
    fn a_child_never_has_a_wrapped_generation() {
        assert_eq!(child_generation(None), Some(1));
        assert_eq!(child_generation(Some(&Version::Rev("41-a".into()))), Some(42));
        assert_eq!(child_generation(Some(&Version::Seq(u64::MAX))), Some(1), "a counter is no parent revision");
        let last = Version::Rev(format!("{}-a", "9".repeat(19)));
        assert_eq!(child_generation(Some(&last)), None);
        assert_eq!(child_link(&last), None);
        assert_eq!(child_link(&Version::Rev("41-a".into())), Some((42, "a")));
        for not_a_revision in [format!("{}-a", u64::MAX), "0-a".into(), "1-".into()] {
            assert_eq!(child_link(&Version::Rev(not_a_revision.clone())), None, "{not_a_revision}");
        }
    }
}
