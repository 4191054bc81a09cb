//! Opening `meta.redb` without ever turning a lost database into lost
//! containers.
//!
//! The database is the one source of truth, and berthd's start-up sweeps
//! (snapshot directories it does not record, blobs no image references,
//! container directories with no record) act on what it does *not* say. A
//! database that is missing or empty knows nothing, so over a root that
//! holds state those sweeps would delete every image and container,
//! running ones included. So:
//!
//! * a missing or empty database over a root with state makes berthd refuse
//!   to start, saying how to proceed (a garbled one already fails to open);
//! * `--reinit-metadata` starts a new, empty database over such a root, and
//!   marks it as one that does not know the whole root: the sweeps never
//!   run with it (what it does not record is kept and reported);
//! * a database created over an empty root knows everything in it, and is
//!   marked so; one from before this mark existed is trusted as before.
use std::path::Path;
use std::sync::Arc;

use berth_contract::Layout;
use redb::{ReadableDatabase, TableDefinition};

use crate::error::{AgentError, Result};
use crate::store_layout::StoreLayout;

/// `complete` → `yes` when the database has recorded the root from its
/// first day (its silence means garbage), `no` when it was started over
/// existing state.
const BERTH_META: TableDefinition<&str, &str> = TableDefinition::new("berth_meta");
const COMPLETE: &str = "complete";

/// The opened database and whether berthd may delete what it does not
/// record.
pub struct Opened {
    pub db: Arc<redb::Database>,
    pub sweep: bool,
}

pub fn open(layout: &Layout, reinit: bool) -> Result<Opened> {
    let path = layout.meta_db();
    let fresh = match std::fs::metadata(&path) {
        Ok(m) => m.len() == 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(source) => return Err(AgentError::Io { context: format!("stat {}", path.display()), source }),
    };
    let state = if fresh { state_in(layout) } else { Vec::new() };
    if fresh && !state.is_empty() && !reinit {
        return Err(AgentError::Startup(format!(
            "metadata database {} is missing or empty, but {} holds state ({}): refusing to start, which would \
             delete it. Restore the database, or start berthd once with --reinit-metadata to begin a new one that \
             keeps what is on disk",
            path.display(),
            layout.root().display(),
            state.join(", ")
        )));
    }
    let db = redb::Database::create(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            AgentError::Startup(format!("{} is in use by another berthd", path.display()))
        }
        e => AgentError::Db(format!("open {}: {e}", path.display())),
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| AgentError::Io { context: format!("chmod {}", path.display()), source })?;
    let sweep = if fresh {
        let complete = state.is_empty();
        let tx = db.begin_write()?;
        tx.open_table(BERTH_META)?.insert(COMPLETE, if complete { "yes" } else { "no" })?;
        tx.commit()?;
        if !complete {
            tracing::warn!(
                db = %path.display(),
                "new metadata database over existing state: nothing it does not record will be deleted"
            );
        }
        complete
    } else {
        let tx = db.begin_read()?;
        match tx.open_table(BERTH_META) {
            Ok(t) => t.get(COMPLETE)?.is_none_or(|v| v.value() == "yes"),
            Err(redb::TableError::TableDoesNotExist(_)) => true,
            Err(e) => return Err(e.into()),
        }
    };
    Ok(Opened { db: Arc::new(db), sweep })
}

/// What the root holds that a database should know about.
fn state_in(layout: &Layout) -> Vec<String> {
    let count = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let mut out = Vec::new();
    for (dir, what) in
        [(layout.containers_dir(), "containers"), (layout.snapshots_dir(), "snapshots"), (layout.blobs_dir(), "blobs")]
    {
        let n = count(&dir);
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    }
    out
}
