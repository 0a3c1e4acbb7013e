//! Files of a database opened outside SQLite, once per process, and never closed.
//!
//! SQLite locks byte ranges of the `-shm` file (readers' marks, the checkpoint lock) and of
//! the database file with POSIX `fcntl` locks, which belong to the process, not to a file
//! descriptor: closing *any* descriptor of a file drops every lock the process holds on it,
//! those of SQLite's own connections included. Another process could then take a lock it must
//! not (rebuild the WAL-index under a live reader, say). SQLite itself never closes such a
//! descriptor while the file is in use. So the files this store reads or `fsync`s itself (the
//! WAL stamp, the checkpointer's flush) are opened here, one descriptor per file per process,
//! shared, and kept until the process exits. (SQLite deletes the `-shm` and `-wal` files when
//! its last connection closes; a later connection makes new ones, which are opened anew.)

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

static OPEN: LazyLock<Mutex<HashMap<PathBuf, Arc<File>>>> = LazyLock::new(Default::default);

/// `path`, opened read-only the first time and shared after, as long as `path` still names the
/// same file. A file that does not exist is not remembered.
pub(super) fn file(path: &Path) -> std::io::Result<Arc<File>> {
    let current = std::fs::metadata(path)?;
    let mut open = OPEN.lock();
    if let Some(file) = open.get(path) {
        if file.metadata().is_ok_and(|m| (m.dev(), m.ino()) == (current.dev(), current.ino())) {
            return Ok(file.clone());
        }
    }
    let file = Arc::new(File::open(path)?);
    open.insert(path.to_owned(), file.clone());
    Ok(file)
}
