//! Django's `file` engine: one file per session under `SESSION_FILE_PATH`.
//!
//! - **Names and contents** as Django's file backend: the file is
//!   `SESSION_COOKIE_NAME + session_key` (`sessionid0123...`) and holds the signed
//!   `session_data` string, nothing else. Keys are checked with [`crate::key::is_valid`]
//!   (`[a-z0-9]`, 8 to 40 characters) before any path is built, so no key can name a file
//!   outside the folder.
//! - **Expiry** is the file's modification time plus `SESSION_COOKIE_AGE`, as Django reads it:
//!   Sesame sets the mtime of each file it writes to `expire_date - SESSION_COOKIE_AGE`, so that
//!   Django and Sesame agree on when a session expires (for a session with an explicit
//!   `set_expiry(datetime)` written by Django, Django honours the date and Sesame the mtime).
//! - **Atomic writes**: data is written to a temporary file in the same folder (named
//!   `.sesame-tmp-*`, which Django's `clearsessions` ignores), then renamed over the session
//!   file, so a reader sees the old or the new contents, never a mix.
//!
//! # Concurrency: what is guaranteed
//! Every Sesame process using the folder takes an exclusive advisory lock (`flock` on
//! `.sesame-lock` in the folder, plus an in-process mutex) around the compare-and-set of a save
//! (read the file, compare it with the version the request loaded, rename) and around deletes.
//! So between Sesame processes on one machine — or on a network file system whose `flock` is
//! real — a save never overwrites a newer version and never brings back a deleted session.
//! `create` links the new file into place, which fails if the name exists: it never
//! overwrites, even against Django. Django's own file backend takes no lock, so a Django
//! process writing the same folder at the same moment can still overwrite Sesame's save (and
//! vice versa); reads never see partial files either way.
//!
//! Files are not `fsync`ed (neither does Django): after a power loss the last writes may be
//! lost, but rename keeps each file whole.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Created, Inspected, Loaded, Record, Saved, SessionStore, Summary, Version};
use crate::codec::Codec;
use crate::error::StoreError;
use crate::key;

/// The lock file in the session folder (its name does not start with a cookie name, so
/// Django's `clearsessions` does not take it for a session).
pub const LOCK_FILE: &str = ".sesame-lock";
/// Prefix of temporary files.
const TMP_PREFIX: &str = ".sesame-tmp-";
/// Temporary files older than this are left over from a crash: `clear_expired` removes them.
const STALE_TMP: Duration = Duration::from_secs(3600);

struct Inner {
    dir: PathBuf,
    prefix: String,
    codec: Codec,
    cookie_age: TimeDelta,
    // parking_lot, not tokio: held only inside blocking tasks, never across an await. It
    // orders this process's writers; the flock on the file orders processes.
    lock: Mutex<File>,
}

/// Sessions as files in one folder (Django's `file` engine).
#[derive(Clone)]
pub struct FileStore(Arc<Inner>);

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.0.dir).field("prefix", &self.0.prefix).finish_non_exhaustive()
    }
}

/// Held while comparing and replacing: the in-process mutex and the cross-process flock.
struct Locked<'a>(parking_lot::MutexGuard<'a, File>);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too, but the file stays open for the next writer.
        if let Err(e) = fs4::FileExt::unlock(&*self.0) {
            tracing::error!(error = %e, "could not release the session folder lock");
        }
    }
}

fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Sessions are credentials: readable by the server's user only (Django's mkstemp too).
        opts.mode(0o600);
    }
    opts
}

impl FileStore {
    /// Keep sessions in `dir`, in files named `prefix` + key (`prefix` is
    /// `SESSION_COOKIE_NAME`, as in Django); `cookie_age` is `SESSION_COOKIE_AGE` in seconds.
    /// The folder is created if `create`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the folder does not exist and `create` is false;
    /// [`StoreError::InvalidKey`] when `prefix` could leave the folder; [`StoreError::Io`]
    /// when the folder or its lock file cannot be created.
    ///
    /// # Examples
    /// ```
    /// use sesame::store::FileStore;
    /// let dir = std::env::temp_dir().join("sesame-doc-sessions");
    /// let store = FileStore::open(&dir, "sessionid", sesame::codec::Codec::new("secret", &[]), 1_209_600, true)?;
    /// assert_eq!(store.path("0123456789abcdef").unwrap(), dir.join("sessionid0123456789abcdef"));
    /// assert!(store.path("../etc/passwd").is_none());
    /// # Ok::<(), sesame::StoreError>(())
    /// ```
    pub fn open(
        dir: impl Into<PathBuf>,
        prefix: &str,
        codec: Codec,
        cookie_age: i64,
        create: bool,
    ) -> Result<Self, StoreError> {
        let dir = dir.into();
        if prefix.is_empty() || prefix.starts_with('.') || prefix.contains(['/', '\\', '\0']) {
            return Err(StoreError::InvalidKey(format!("file name prefix {prefix:?}")));
        }
        if create {
            fs::create_dir_all(&dir)?;
        } else if !dir.is_dir() {
            return Err(StoreError::NotFound(format!("session folder {} does not exist", dir.display())));
        }
        let lock = private_options().read(true).write(true).create(true).truncate(false).open(dir.join(LOCK_FILE))?;
        Ok(FileStore(Arc::new(Inner {
            dir,
            prefix: prefix.to_owned(),
            codec,
            cookie_age: TimeDelta::seconds(cookie_age),
            lock: Mutex::new(lock),
        })))
    }

    /// The folder sessions are kept in.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// The file of session `key`, if `key` is a valid session key.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        key::is_valid(key).then(|| self.0.dir.join(format!("{}{key}", self.0.prefix)))
    }

    fn path_or_err(&self, key: &str) -> Result<PathBuf, StoreError> {
        self.path(key).ok_or_else(|| StoreError::InvalidKey(key::redact(key)))
    }

    /// Run blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }
}

impl Inner {
    fn lock(&self) -> Result<Locked<'_>, StoreError> {
        let guard = self.lock.lock();
        fs4::FileExt::lock(&*guard)?;
        Ok(Locked(guard))
    }

    fn expire_date(&self, mtime: SystemTime) -> DateTime<Utc> {
        DateTime::<Utc>::from(mtime) + self.cookie_age
    }

    /// Contents and expiry of a session file, or `None` if there is none.
    fn read(&self, path: &Path) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Metadata of the open file, so contents and mtime belong to the same version even if
        // a writer renames a new file into place meanwhile.
        let mtime = f.metadata()?.modified()?;
        let mut raw = String::new();
        f.read_to_string(&mut raw)?;
        Ok(Some((raw, self.expire_date(mtime))))
    }

    /// Write `contents` to a new temporary file whose mtime encodes `expire_date`.
    fn write_tmp(&self, contents: &str, expire_date: DateTime<Utc>) -> Result<PathBuf, StoreError> {
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", key::generate()));
        let mut f = private_options().write(true).create_new(true).open(&tmp)?;
        let written = f
            .write_all(contents.as_bytes())
            .and_then(|()| f.set_modified(SystemTime::from(expire_date - self.cookie_age)));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(tmp)
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        let Some(path) = self.path(key) else { return Ok(None) };
        let read = self.blocking(move |inner| inner.read(&path)).await?;
        Ok(read.filter(|(_, expire)| *expire > now).map(|(raw, _)| {
            let decoded = self.0.codec.decode(&raw).map(|d| d.data);
            Loaded::from_stored(key, raw, decoded)
        }))
    }

    async fn create(&self, key: &str, record: Record<'_>) -> Result<Created, StoreError> {
        let path = self.path_or_err(key)?;
        let encoded = self.0.codec.encode(record.data);
        let expire = record.expire_date;
        let contents = encoded.clone();
        let linked = self
            .blocking(move |inner| {
                let tmp = inner.write_tmp(&contents, expire)?;
                // A hard link fails if the name exists: insert-never-overwrite without a lock,
                // even against Django (which creates with O_EXCL).
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        Ok(if linked { Created::Created { key: key.to_owned(), version: Version(encoded) } } else { Created::KeyTaken })
    }

    async fn save(&self, key: &str, record: Record<'_>, expected: &Version) -> Result<Saved, StoreError> {
        let path = self.path_or_err(key)?;
        let encoded = self.0.codec.encode(record.data);
        let (contents, expected, expire) = (encoded.clone(), expected.0.clone(), record.expire_date);
        let saved = self
            .blocking(move |inner| {
                // The slow part (writing the data) happens before taking the lock.
                let tmp = inner.write_tmp(&contents, expire)?;
                let outcome = (|| {
                    let _locked = inner.lock()?;
                    let current = match fs::read_to_string(&path) {
                        Ok(s) => s,
                        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                        Err(e) => return Err(StoreError::from(e)),
                    };
                    if current != expected {
                        return Ok(false);
                    }
                    fs::rename(&tmp, &path)?;
                    Ok(true)
                })();
                if !matches!(outcome, Ok(true)) {
                    let _ = fs::remove_file(&tmp);
                }
                outcome
            })
            .await?;
        Ok(if saved { Saved::Saved { key: key.to_owned(), version: Version(encoded) } } else { Saved::Conflict })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let Some(path) = self.path(key) else { return Ok(()) };
        self.blocking(move |inner| {
            let _locked = inner.lock()?;
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let Some(path) = self.path(key) else { return Ok(false) };
        self.blocking(move |_| match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn clear_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.blocking(move |inner| {
            let mut removed = 0;
            for (key, meta) in sessions(inner)? {
                if inner.expire_date(meta.modified()?) >= now {
                    continue;
                }
                let path = inner.dir.join(format!("{}{key}", inner.prefix));
                let _locked = inner.lock()?;
                // Check again under the lock: a save may have renewed it since the scan.
                match fs::metadata(&path) {
                    Ok(m) if inner.expire_date(m.modified()?) < now => {
                        fs::remove_file(&path)?;
                        removed += 1;
                    }
                    _ => {}
                }
            }
            remove_stale_tmp(inner);
            Ok(removed)
        })
        .await
    }

    async fn inspect(&self, key: &str) -> Result<Option<Inspected>, StoreError> {
        let Some(path) = self.path(key) else { return Ok(None) };
        let read = self.blocking(move |inner| inner.read(&path)).await?;
        Ok(read.map(|(raw, expire_date)| Inspected {
            data: self.0.codec.decode(&raw).map(|d| d.data),
            expire_date,
            size: raw.len(),
        }))
    }

    async fn list(&self, now: DateTime<Utc>, expired_only: bool, limit: u64) -> Result<Vec<Summary>, StoreError> {
        self.blocking(move |inner| {
            let mut rows = Vec::new();
            for (key, meta) in sessions(inner)? {
                let expire_date = inner.expire_date(meta.modified()?);
                if !expired_only || expire_date <= now {
                    rows.push(Summary { key, expire_date, size: usize::try_from(meta.len()).unwrap_or(usize::MAX) });
                }
            }
            rows.sort_by(|a, b| a.expire_date.cmp(&b.expire_date).then_with(|| a.key.cmp(&b.key)));
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(rows)
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| Ok(sessions(inner)?.len() as u64)).await
    }
}

/// The session files in the folder: `(key, metadata)` of each regular file named prefix + a
/// valid key (anything else in the folder is not ours and is left alone).
fn sessions(inner: &Inner) -> Result<Vec<(String, fs::Metadata)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(&inner.dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(key) = name.to_str().and_then(|n| n.strip_prefix(inner.prefix.as_str())) else { continue };
        if !key::is_valid(key) {
            continue;
        }
        match entry.metadata() {
            Ok(m) if m.is_file() => out.push((key.to_owned(), m)),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {} // deleted since read_dir
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Remove temporary files a crashed writer left behind (best effort).
fn remove_stale_tmp(inner: &Inner) {
    let Ok(entries) = fs::read_dir(&inner.dir) else { return };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_str().is_some_and(|n| n.starts_with(TMP_PREFIX))
            && entry
                .metadata()
                .ok()
                .and_then(|m| m.created().or_else(|_| m.accessed()).ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> FileStore {
        FileStore::open(dir, "sessionid", Codec::new("k", &[]), 1_209_600, true).unwrap()
    }

    #[test]
    fn keys_cannot_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for bad in ["../../etc/passwd", "abc/defghij", "..", "", "ABCDEFGHIJ", "a\0bcdefghi"] {
            assert!(s.path(bad).is_none(), "{bad:?}");
        }
        assert_eq!(s.path("abcdefgh12").unwrap(), dir.path().join("sessionidabcdefgh12"));
        for bad_prefix in ["", "../x", "a/b", ".hidden"] {
            assert!(FileStore::open(dir.path(), bad_prefix, Codec::new("k", &[]), 60, true).is_err());
        }
    }

    #[tokio::test]
    async fn files_are_named_and_filled_as_django_does() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let data: crate::Data = serde_json::json!({"a": 1}).as_object().cloned().unwrap();
        let expire = Utc::now() + TimeDelta::days(14);
        let Created::Created { version, .. } =
            s.create("abcdefgh12345678", Record { data: &data, expire_date: expire }).await.unwrap()
        else {
            panic!("taken")
        };
        let path = dir.path().join("sessionidabcdefgh12345678");
        assert_eq!(fs::read_to_string(&path).unwrap(), version.0);
        // Django: expiry = mtime + SESSION_COOKIE_AGE.
        let mtime = DateTime::<Utc>::from(fs::metadata(&path).unwrap().modified().unwrap());
        assert!((mtime + TimeDelta::seconds(1_209_600) - expire).num_milliseconds().abs() < 5);
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().all(|n| n == LOCK_FILE || n.starts_with("sessionid")), "no temp file left: {names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
