//! Schema versions of the IndexedDB database, one upgrade step per version.
//!
//! A new version adds a `v{n}` step and bumps [`SCHEMA_VERSION`]; existing steps never change, so a browser
//! that skipped versions replays every step it missed, in order.

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;

/// The version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// v1: cached documents keyed `"<collection>/<id>"`, values the document's JSON. Dropped in v2.
const V1_DOCS: &str = "docs";
/// Cache entries keyed `"<collection>/<id>"`, values the entry's JSON (document, stored time, pending).
pub const ENTRIES: &str = "entries";
/// Offline writes keyed by `seq` (a number), values the outbox entry's JSON.
pub const OUTBOX: &str = "outbox";

/// Runs every step from `old_version` up to [`SCHEMA_VERSION`].
pub fn upgrade(old_version: u32, db: &Database) -> indexed_db_futures::Result<()> {
    if old_version < 1 {
        v1(db)?;
    }
    if old_version < 2 {
        v2(db)?;
    }
    Ok(())
}

fn v1(db: &Database) -> indexed_db_futures::Result<()> {
    db.create_object_store(V1_DOCS).build()?;
    Ok(())
}

/// v2 keeps entries with their metadata and adds the outbox. v1's cached documents are dropped: a cache may
/// always be refetched, and v1 had no pending writes.
fn v2(db: &Database) -> indexed_db_futures::Result<()> {
    db.delete_object_store(V1_DOCS)?;
    db.create_object_store(ENTRIES).build()?;
    db.create_object_store(OUTBOX).build()?;
    Ok(())
}
