//! Schema versions of the IndexedDB database, one upgrade step per version.
//!
//! A new version adds a `v{n}` step and bumps [`SCHEMA_VERSION`]; existing steps never change, so a browser
//! that skipped versions replays every step it missed, in order.

use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;

/// The version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Object store holding cached documents (since v1).
pub const DOCS: &str = "docs";

/// Runs every step from `old_version` up to [`SCHEMA_VERSION`].
pub fn upgrade(old_version: u32, db: &Database) -> indexed_db_futures::Result<()> {
    if old_version < 1 {
        v1(db)?;
    }
    Ok(())
}

fn v1(db: &Database) -> indexed_db_futures::Result<()> {
    db.create_object_store(DOCS).build()?;
    Ok(())
}
