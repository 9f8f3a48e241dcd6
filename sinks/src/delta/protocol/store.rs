//! Object stores for tables: opening a table URL, and checking that the store honours
//! put-if-absent, which every Delta commit relies on.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::delta::DeltaError;

/// The store and the table root inside it for `url`:
/// - a plain path or `file://` URL: the local directory (created if missing);
/// - `memory://`: a new, empty in-memory store (for tests);
/// - `s3://bucket/prefix`: S3 or an S3-compatible server, configured from the usual
///   `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION` or
///   `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
///   `AWS_ALLOW_HTTP=true` for a local endpoint, `AWS_CONDITIONAL_PUT`).
pub fn open_store(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), DeltaError> {
    open(url, true)
}

/// Like [`open_store`], but a local directory must exist already: for commands that
/// only read a table.
pub fn open_existing_store(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), DeltaError> {
    open(url, false)
}

fn open(url: &str, create: bool) -> Result<(Arc<dyn ObjectStore>, Path), DeltaError> {
    let bad = |message: String| DeltaError::Url {
        url: url.to_owned(),
        message,
    };
    if url.starts_with("memory://") {
        return Ok((Arc::new(InMemory::new()), Path::default()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad(
                "an s3:// URL needs a bucket: s3://bucket/path/to/table".into(),
            ));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let root = Path::parse(prefix.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        return Ok((Arc::new(store), root));
    }
    let Some(local) = local_dir(url) else {
        return Err(bad(
            "supported table URLs: a local path, file://, s3:// and memory://".into(),
        ));
    };
    if create {
        std::fs::create_dir_all(local)
            .map_err(|e| bad(format!("cannot create the directory: {e}")))?;
    } else if !std::path::Path::new(local).is_dir() {
        return Err(bad("no such directory".into()));
    }
    let store = LocalFileSystem::new_with_prefix(local).map_err(|e| bad(e.to_string()))?;
    Ok((Arc::new(store), Path::default()))
}

/// The local directory `url` names: a plain path or a `file://` URL.
pub fn local_dir(url: &str) -> Option<&str> {
    match url.strip_prefix("file://") {
        Some(path) => Some(path),
        None if !url.contains("://") => Some(url),
        None => None,
    }
}

/// Checks that `store` refuses a second put-if-absent of the same key, as Delta commits
/// need; a store that does not (S3 with conditional put disabled, a server that ignores
/// `If-None-Match`) would let two writers both win a version and lose data.
pub async fn check_put_if_absent(
    store: &dyn ObjectStore,
    root: &Path,
    url: &str,
) -> Result<(), DeltaError> {
    let probe = root
        .clone()
        .join("_tidelake")
        .join(format!("put-if-absent-probe-{}", uuid::Uuid::new_v4()));
    let put = || {
        store.put_opts(
            &probe,
            PutPayload::from(Bytes::from_static(b"probe")),
            PutOptions::from(PutMode::Create),
        )
    };
    let refuse = |why: String| DeltaError::Url {
        url: url.to_owned(),
        message: format!(
            "the store does not support put-if-absent ({why}), so concurrent commits could overwrite each other; \
             enable conditional put (for S3: AWS_CONDITIONAL_PUT=etag) or use another store"
        ),
    };
    let second = match put().await {
        Ok(_) => put().await,
        Err(
            e @ (object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }),
        ) => {
            return Err(refuse(format!("a conditional put failed: {e}")));
        }
        // Not an answer about put-if-absent: the store cannot be written at all
        // (unreachable, no such bucket, no permission).
        Err(source) => {
            return Err(DeltaError::Store {
                path: probe.to_string(),
                source,
            });
        }
    };
    let _ = store.delete(&probe).await;
    match second {
        Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Ok(_) => Err(refuse(
            "a second conditional put of the same key succeeded".into(),
        )),
        Err(e) => Err(refuse(format!("a conditional put failed: {e}"))),
    }
}

/// The median time of `puts` put-if-absent writes of a small new object to `store`
/// (under `<root>/_tidelake/`, deleted after): what one commit attempt costs at least.
pub async fn put_if_absent_latency(
    store: &dyn ObjectStore,
    root: &Path,
    puts: usize,
) -> Result<std::time::Duration, DeltaError> {
    let mut times = Vec::with_capacity(puts);
    for _ in 0..puts.max(1) {
        let probe = root
            .clone()
            .join("_tidelake")
            .join(format!("latency-probe-{}", uuid::Uuid::new_v4()));
        let started = std::time::Instant::now();
        store
            .put_opts(
                &probe,
                PutPayload::from(Bytes::from_static(b"probe")),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map_err(|source| DeltaError::Store {
                path: probe.to_string(),
                source,
            })?;
        times.push(started.elapsed());
        let _ = store.delete(&probe).await;
    }
    times.sort();
    Ok(times[times.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;

    #[test]
    fn local_and_memory_stores_honour_put_if_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = dir.path().join("t").display().to_string();
        for url in [url.as_str(), "memory://t"] {
            let (store, root) = open_store(url).expect("open");
            block_on(check_put_if_absent(store.as_ref(), &root, url)).expect("put-if-absent");
        }
        let probe_dir = dir.path().join("t/_tidelake");
        let left: Vec<_> = std::fs::read_dir(&probe_dir)
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "the probe is deleted");
    }

    #[test]
    fn opening_an_existing_store_creates_no_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing").display().to_string();
        for url in [missing.clone(), format!("file://{missing}")] {
            let err = open_existing_store(&url).expect_err("missing");
            assert!(
                err.to_string().contains(&url) && err.to_string().contains("no such directory"),
                "{err}"
            );
        }
        assert!(!dir.path().join("missing").exists());
        open_existing_store(&dir.path().display().to_string()).expect("exists");
        open_existing_store("memory://t").expect("memory");
    }

    #[test]
    fn s3_urls_need_a_bucket_and_unknown_schemes_are_refused() {
        let err = open_store("s3:///x").expect_err("no bucket");
        assert!(err.to_string().contains("needs a bucket"), "{err}");
        let err = open_store("gs://b/t").expect_err("scheme");
        assert!(err.to_string().contains("supported table URLs"), "{err}");
    }

    #[test]
    fn s3_with_conditional_put_disabled_is_refused_before_any_request() {
        // With conditional put disabled, object_store refuses PutMode::Create locally
        // (NotImplemented), so no server is needed to see the refusal.
        let store = AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("us-east-1")
            .with_endpoint("http://127.0.0.1:9")
            .with_allow_http(true)
            .with_access_key_id("k")
            .with_secret_access_key("s")
            .with_conditional_put(object_store::aws::S3ConditionalPut::Disabled)
            .build()
            .expect("build");
        let err = block_on(check_put_if_absent(&store, &Path::from("t"), "s3://b/t"))
            .expect_err("refused");
        assert!(
            err.to_string().contains("does not support put-if-absent"),
            "{err}"
        );
    }
}
