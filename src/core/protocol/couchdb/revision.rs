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

/// The revision a write with `key` makes over `parent` (None: the document's first): its generation and hash.
/// The hash covers the parent, so one key over two parents is two revisions, never one id under two parents.
pub(super) fn child_of(parent: Option<&Version>, key: &str) -> (u64, String) {
    let generation = parent.and_then(Version::rev_parts).map_or(1, |(g, _)| g + 1);
    let parent = parent.map(Version::to_string).unwrap_or_default();
    (generation, rev_hash(&[key, &parent]))
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
            let generation = top.saturating_sub(i as u64);
            let parent = match self.history.get(i + 1) {
                Some(p) => format!("{}-{p}", generation - 1),
                None if generation == 1 => String::new(),
                None => return false, // the history was stemmed here
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

    #[test]
    fn rev_hashes_are_32_hex_digits_and_separate_parts() {
        let h = rev_hash(&["a"]);
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(rev_hash(&["ab", "c"]), rev_hash(&["a", "bc"]));
    }
}
