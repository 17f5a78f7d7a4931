//! Read-your-writes across a failover: is a session's last write in this node's history?
//!
//! Why: a session position used to be a bare LSN. After a failover that loses an async tail,
//! the new timeline reaches the same LSN *without* the lost write, so "replayed past p" no
//! longer meant "has the session's writes", and read-your-writes broke silently. A session
//! now names its last write as (term, position). A node of the same term compares positions as
//! before. A node of a later term reads its timeline history (`pg_wal/<term>.history`, written
//! by PostgreSQL at every promotion and fetched by every standby that follows it): each line
//! says where an earlier timeline ended, its *switch point*. WAL before the switch point is
//! shared by both timelines; WAL after it is the lost tail. So the session's write is in this
//! node's history exactly when its position is at or before the switch point of its term; when
//! it is after (or the term is not an ancestor at all), the write was lost and the read answers
//! 409 `session_lost` instead of older data. Positions are measured after the commit, so a write
//! at the very end of a timeline can be called lost when it was kept: the error is on the safe side.
//!
//! History files never change once written, so each is read once per gateway and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::log;
use crate::position::Position;

/// One line of a timeline history file: timeline `parent` ended at `switch_point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub parent: u64,
    pub switch_point: u64,
}

/// Where a session's last write stands relative to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The node is on the session's term: compare positions as usual.
    SameTerm,
    /// The node is on a later term whose history includes the session's write.
    Included,
    /// The node is on an earlier term than the session (a stale replica or a stale primary).
    Behind,
    /// The session's write is not in this node's history: a failover lost it.
    Lost,
    /// The node's history could not be read.
    Unknown,
}

/// Judge `session` against a node at `node`, whose timeline history is `history` (only read
/// when the node's term is later than the session's).
pub fn judge(session: Position, node: Position, history: Option<&[Switch]>) -> Judgement {
    if session.term == node.term {
        return Judgement::SameTerm;
    }
    if session.term > node.term {
        return Judgement::Behind;
    }
    let Some(history) = history else {
        return Judgement::Unknown;
    };
    match history.iter().find(|s| s.parent == session.term) {
        Some(s) if session.lsn <= s.switch_point => Judgement::Included,
        _ => Judgement::Lost,
    }
}

/// Parse a timeline history file: lines `<parent tli>\t<switch LSN X/Y>\t<reason>`, comments
/// and blank lines ignored. `None` when a line is malformed (then nothing is trusted).
pub fn parse_history(text: &str) -> Option<Vec<Switch>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let parent = fields.next()?.parse::<u64>().ok()?;
        let (hi, lo) = fields.next()?.split_once('/')?;
        let switch_point = (u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?;
        out.push(Switch { parent, switch_point });
    }
    Some(out)
}

/// The timeline histories this gateway has read, by term.
#[derive(Default)]
pub struct Histories {
    cache: Mutex<HashMap<u64, Arc<Vec<Switch>>>>,
}

impl Histories {
    /// Judge `session` against this node (at `node`), reading its history when needed.
    pub async fn judge(&self, client: &tokio_postgres::Client, session: Position, node: Position) -> Judgement {
        if session.term >= node.term {
            return judge(session, node, None);
        }
        let history = self.history(client, node.term).await;
        judge(session, node, history.as_deref().map(Vec::as_slice))
    }

    async fn history(&self, client: &tokio_postgres::Client, term: u64) -> Option<Arc<Vec<Switch>>> {
        if let Some(h) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&term) {
            return Some(h.clone());
        }
        // The file name is built from a number, never from client text; `missing_ok` gives NULL.
        // (PostgreSQL 15 has no two-argument form: offset 0 and a bound of 1 MiB, far above any history.)
        let file = format!("pg_wal/{:08X}.history", term);
        let text = match client.query_one("SELECT pg_read_file($1, 0, 1048576, true)", &[&file]).await {
            Ok(row) => row.try_get::<_, Option<String>>(0).ok().flatten(),
            Err(e) => {
                log(format_args!(
                    "reading timeline history {file}: {e} (the gateway's role needs pg_read_server_files)"
                ));
                None
            }
        };
        let history = Arc::new(parse_history(&text?)?);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(term, history.clone());
        Some(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "1\t0/3000198\tno recovery target specified\n\n2\t1/A0\tno recovery target specified\n";

    fn at(term: u64, lsn: u64) -> Position {
        Position { term, lsn }
    }

    #[test]
    fn a_history_file_parses_into_switch_points() {
        let h = parse_history(THREE).unwrap();
        assert_eq!(
            h,
            vec![Switch { parent: 1, switch_point: 0x3000198 }, Switch { parent: 2, switch_point: 0x1_0000_00A0 }]
        );
        assert_eq!(parse_history("1\tnot-an-lsn\tx"), None);
        assert_eq!(parse_history(""), Some(vec![]));
    }

    #[test]
    fn a_write_before_its_terms_switch_point_survived_and_one_after_it_was_lost() {
        let h = parse_history(THREE).unwrap();
        let node = at(3, 0x2_0000_0000);
        assert_eq!(judge(at(1, 0x3000198), node, Some(&h)), Judgement::Included);
        assert_eq!(judge(at(1, 0x3000199), node, Some(&h)), Judgement::Lost, "past the switch point: the lost tail");
        assert_eq!(judge(at(2, 0x1_0000_00A0), node, Some(&h)), Judgement::Included);
        assert_eq!(judge(at(2, 0x1_0000_00A1), node, Some(&h)), Judgement::Lost);
    }

    #[test]
    fn a_term_outside_the_history_is_lost_and_no_history_is_unknown() {
        let h = parse_history("1\t0/5000\tx\n").unwrap();
        // Timeline 3 descends from 1 only: a session on timeline 2 was on a branch that was abandoned.
        assert_eq!(judge(at(2, 10), at(3, 0x9000), Some(&h)), Judgement::Lost);
        assert_eq!(judge(at(1, 10), at(3, 0x9000), None), Judgement::Unknown);
    }

    #[test]
    fn the_same_term_compares_positions_and_an_older_node_is_behind() {
        assert_eq!(judge(at(2, 500), at(2, 10), None), Judgement::SameTerm);
        assert_eq!(judge(at(3, 5), at(2, 10), None), Judgement::Behind);
    }
}
