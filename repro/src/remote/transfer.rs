//! Moving cache objects between `.dvc/cache` and a remote, `jobs` at a time: which objects
//! the remote already has (HEAD each, or list their `xx/` prefixes when that takes fewer
//! requests), uploads to the final key only from whole local objects (a PUT, or a multipart
//! upload completed in one call, is atomic), downloads md5-verified before an atomic rename
//! into the cache. Each request is retried with backoff by the store's client.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use futures_util::{StreamExt, TryStreamExt, stream};
use indicatif::ProgressBar;
use md5::{Digest, Md5};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cache::Cache;
use crate::error::Error;

use super::{Backend, RemoteError};

/// Objects up to this size go up in one PUT; larger ones as a multipart upload of such parts.
const PART: usize = 16 << 20;
/// Up to this many objects are checked one HEAD each; more, by listing.
const HEAD_LIMIT: usize = 256;
/// Keys per page of an S3 listing.
const PAGE: usize = 1000;

/// Where DVC 3 keeps the object `oid` on a remote: `<prefix>/files/md5/<xx>/<rest>`.
pub fn key(backend: &dyn Backend, oid: &str) -> Key {
    Key::from(format!("{}/{}", dir_key(backend, &oid[..2]), &oid[2..]))
}

fn dir_key(backend: &dyn Backend, xx: &str) -> String {
    match backend.prefix() {
        "" => format!("files/md5/{xx}"),
        p => format!("{p}/files/md5/{xx}"),
    }
}

/// Fails early, with a message saying what to fix, when the bucket is missing, the
/// credentials are refused or the endpoint cannot be reached.
pub async fn check(backend: &dyn Backend) -> Result<(), RemoteError> {
    let root = Key::from(dir_key(backend, "").trim_end_matches('/'));
    match backend.store().list_with_delimiter(Some(&root)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(backend.explain(e, "listing", root.as_ref())),
    }
}

/// The sizes of those of `oids` the remote has, found the way DVC finds them: a HEAD each
/// for a few; otherwise a listing, of the whole `files/md5/` when the remote is small (its
/// size estimated from the `00/` prefix) and of each needed `xx/` prefix in parallel when not.
pub async fn remote_sizes(
    backend: &dyn Backend,
    oids: &[&str],
    jobs: usize,
) -> Result<HashMap<String, u64>, RemoteError> {
    if oids.len() <= HEAD_LIMIT {
        let found = stream::iter(oids.iter().copied())
            .map(|oid| async move {
                let key = key(backend, oid);
                match backend.store().head(&key).await {
                    Ok(meta) => Ok(Some((oid.to_owned(), meta.size))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(backend.explain(e, "checking", key.as_ref())),
                }
            })
            .buffer_unordered(jobs)
            .try_collect::<Vec<_>>()
            .await?;
        return Ok(found.into_iter().flatten().collect());
    }
    let mut prefixes: Vec<&str> = oids.iter().map(|o| &o[..2]).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    let estimate = 256 * list(backend, "00").await?.len();
    let listed = if estimate / PAGE < prefixes.len().div_ceil(jobs) {
        vec![list(backend, "").await?]
    } else {
        stream::iter(prefixes).map(|xx| list(backend, xx)).buffer_unordered(jobs).try_collect::<Vec<_>>().await?
    };
    let wanted: std::collections::HashSet<&str> = oids.iter().copied().collect();
    Ok(listed.into_iter().flatten().filter(|(oid, _)| wanted.contains(oid.as_str())).collect())
}

/// The objects under `files/md5/<xx>` (all of them for `""`), as oid and size.
async fn list(backend: &dyn Backend, xx: &str) -> Result<Vec<(String, u64)>, RemoteError> {
    let dir = Key::from(dir_key(backend, xx));
    let metas: Vec<_> = backend
        .store()
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| backend.explain(e, "listing", dir.as_ref()))?;
    let base = format!("{}/", dir.as_ref());
    Ok(metas
        .into_iter()
        .filter_map(|m| {
            let rest = m.location.as_ref().strip_prefix(&base)?;
            let oid = format!("{xx}{}", rest.replacen('/', "", 1));
            (oid.len() >= 32).then_some((oid, m.size))
        })
        .collect())
}

/// Uploads the local objects `oids` (with their sizes), `jobs` at a time.
pub async fn upload(
    backend: &dyn Backend,
    cache: &Cache,
    oids: &[(&str, u64)],
    jobs: usize,
    bar: &ProgressBar,
) -> Result<(), RemoteError> {
    stream::iter(oids.iter().map(Ok))
        .try_for_each_concurrent(jobs, |&(oid, size)| async move {
            upload_one(backend, cache, oid, size).await?;
            bar.inc(1);
            Ok(())
        })
        .await
}

async fn upload_one(backend: &dyn Backend, cache: &Cache, oid: &str, size: u64) -> Result<(), RemoteError> {
    let path = cache.object_path(oid);
    let key = key(backend, oid);
    let remote = |e| backend.explain(e, "uploading to", key.as_ref());
    if size <= PART as u64 {
        let data = tokio::fs::read(&path).await.map_err(Error::io(&path))?;
        backend.store().put(&key, data.into()).await.map_err(remote)?;
        return Ok(());
    }
    let mut file = tokio::fs::File::open(&path).await.map_err(Error::io(&path))?;
    let mut writer =
        WriteMultipart::new_with_chunk_size(backend.store().put_multipart(&key).await.map_err(remote)?, PART);
    let mut buf = vec![0; PART];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                // Nothing appears under the key until the upload completes.
                let _ = writer.abort().await;
                return Err(Error::Io { path, source: e }.into());
            }
        };
        writer.wait_for_capacity(2).await.map_err(remote)?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map_err(remote)?;
    Ok(())
}

/// Downloads `oids` into the cache, `jobs` at a time; returns those the remote lacks.
pub async fn download(
    backend: &dyn Backend,
    cache: &Cache,
    oids: &[&str],
    jobs: usize,
    bar: &ProgressBar,
) -> Result<Vec<String>, RemoteError> {
    let missing = stream::iter(oids.iter().copied())
        .map(|oid| async move {
            let found = download_one(backend, cache, oid).await?;
            bar.inc(1);
            Ok::<_, RemoteError>((!found).then(|| oid.to_owned()))
        })
        .buffer_unordered(jobs)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(missing.into_iter().flatten().collect())
}

/// Streams one object into a temp file beside its place in the cache, hashing as it goes,
/// and renames it into place only when its md5 is the one its name says.
async fn download_one(backend: &dyn Backend, cache: &Cache, oid: &str) -> Result<bool, RemoteError> {
    let key = key(backend, oid);
    let remote = |e| backend.explain(e, "downloading", key.as_ref());
    let body = match backend.store().get(&key).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(remote(e)),
    };
    let dst = cache.object_path(oid);
    let dir = dst.parent().expect("objects live in a subdirectory");
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let tmp = tempfile::Builder::new().prefix(".tmp").tempfile_in(dir).map_err(Error::io(dir))?.into_temp_path();
    let mut file = tokio::fs::File::create(&tmp).await.map_err(Error::io(&dst))?;
    let mut md5 = Md5::new();
    let mut chunks = body.into_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(remote)?;
        md5.update(&chunk);
        file.write_all(&chunk).await.map_err(Error::io(&dst))?;
    }
    file.flush().await.map_err(Error::io(&dst))?;
    drop(file);
    let actual = hex::encode(md5.finalize());
    let expected = oid.trim_end_matches(".dir");
    if actual != expected {
        return Err(RemoteError::Corrupt {
            url: format!("{}/{}", backend.url().trim_end_matches('/'), key_after_prefix(backend, &key)),
            expected: expected.to_owned(),
            actual,
        });
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)).map_err(Error::io(&dst))?;
    tmp.persist(&dst).map_err(|e| Error::Io { path: dst.clone(), source: e.error })?;
    Ok(true)
}

/// The key without the remote's own prefix (which the url already ends with).
fn key_after_prefix<'a>(backend: &dyn Backend, key: &'a Key) -> &'a str {
    let k = key.as_ref();
    match backend.prefix() {
        "" => k,
        p => k.strip_prefix(p).map_or(k, |r| r.trim_start_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt};

    use super::*;

    /// object_store's in-memory store under a prefix, as a remote.
    struct Memory(InMemory);

    impl Backend for Memory {
        fn store(&self) -> &dyn ObjectStore {
            &self.0
        }
        fn prefix(&self) -> &str {
            "dvc/store"
        }
        fn url(&self) -> &str {
            "memory://dvc/store"
        }
        fn explain(&self, err: object_store::Error, what: &'static str, key: &str) -> RemoteError {
            RemoteError::Transfer { what, url: key.to_owned(), detail: err.to_string() }
        }
    }

    #[tokio::test]
    async fn every_way_of_checking_finds_the_same_objects() {
        let remote = Memory(InMemory::new());
        // Ten objects under 00/ make the remote look large (2,560), three more elsewhere.
        let there: Vec<String> = (0..10)
            .map(|i| format!("00{i:030x}"))
            .chain(["ab", "cd", "ef"].map(|p| format!("{p}{:030x}", 7)))
            .collect();
        for (i, oid) in there.iter().enumerate() {
            remote.0.put(&key(&remote, oid), vec![0; i].into()).await.unwrap();
        }
        remote.0.put(&Key::from("dvc/store/files/md5/ab/.tmp-not-an-object"), vec![1].into()).await.unwrap();
        remote
            .0
            .put(&Key::from("elsewhere/files/md5/ab/0000000000000000000000000000ff"), vec![1].into())
            .await
            .unwrap();
        let asked: Vec<String> = there.iter().cloned().chain((0..300).map(|i| format!("ab{i:030x}"))).collect();
        let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
        let want: HashMap<String, u64> = there.iter().enumerate().map(|(i, o)| (o.clone(), i as u64)).collect();
        // One job: one listing of two pages beats four prefix listings in turn; with 64 jobs
        // the four prefixes listed at once beat it.
        for jobs in [1, 64] {
            assert_eq!(remote_sizes(&remote, &asked, jobs).await.unwrap(), want, "{jobs} jobs");
        }
        // A few: one HEAD each.
        assert_eq!(remote_sizes(&remote, &asked[..13], 4).await.unwrap(), want);
    }
}
