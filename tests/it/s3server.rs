//! A real S3-protocol server on 127.0.0.1 for the object-storage tests and
//! bench: s3s with its filesystem backend (a bucket is a folder below
//! `root`, an object a file), SigV4-checked against one key. The bench
//! includes it too, and each uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ACCESS_KEY: &str = "AKIAORGSQLTEST";
pub const SECRET_KEY: &str = "orgsql-test-secret-that-must-never-print";

pub struct S3Server {
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
    limit: Arc<Limit>,
}

/// When the server stops: after this many more writes of objects whose
/// key has this part (`u64::MAX`: never).
struct Limit {
    writes_left: AtomicU64,
    under: std::sync::Mutex<String>,
    /// Every request served: its operation and the object's key.
    requests: std::sync::Mutex<Vec<(String, String)>>,
    /// The next request of this operation on a key holding this text waits
    /// at `reached` until `release` (once).
    hold: std::sync::Mutex<Option<(String, String)>>,
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// Requests of this operation are refused (AccessDenied) after this many.
    refuse: std::sync::Mutex<Option<(String, u64)>>,
}

/// s3s-fs makes a bucket on a write to a missing one; a real service says
/// NoSuchBucket. And when the write limit is reached, the server stops.
struct Rules {
    root: PathBuf,
    limit: Arc<Limit>,
    stop: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Rules {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3s::s3_error!(AccessDenied, "Signature is required"));
        }
        let op = cx.s3_op().name().to_string();
        let object = match cx.s3_path() {
            s3s::path::S3Path::Object { key, .. } => key.to_string(),
            _ => String::new(),
        };
        if let Ok(mut requests) = self.limit.requests.lock() {
            requests.push((op.clone(), object.clone()));
        }
        let held = self.limit.hold.lock().map(|mut hold| {
            // The guard ends here: the wait below is not under it.
            let matches = hold
                .as_ref()
                .is_some_and(|(o, part)| *o == op && object.contains(part.as_str()));
            matches && hold.take().is_some()
        });
        if held.unwrap_or(false) {
            let released = self.limit.release.notified();
            self.limit.reached.notify_one();
            released.await;
        }
        let refused = self
            .limit
            .refuse
            .lock()
            .is_ok_and(|mut refuse| match refuse.as_mut() {
                Some((o, 0)) if *o == op => true,
                Some((o, after)) if *o == op => {
                    *after -= 1;
                    false
                }
                _ => false,
            });
        if refused {
            return Err(s3s::s3_error!(AccessDenied, "refused by the test"));
        }
        let writes = [
            "PutObject",
            "UploadPart",
            "CreateMultipartUpload",
            "CompleteMultipartUpload",
        ];
        let key = match cx.s3_path() {
            s3s::path::S3Path::Object { key, .. } => key.to_string(),
            _ => String::new(),
        };
        let under = self
            .limit
            .under
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default();
        if writes.contains(&cx.s3_op().name()) && key.contains(&under) {
            let left = self.limit.writes_left.load(Ordering::SeqCst);
            if left == 0 {
                let _ = self.stop.send(true);
                return Err(s3s::s3_error!(ServiceUnavailable, "stopped"));
            }
            if left != u64::MAX {
                self.limit.writes_left.fetch_sub(1, Ordering::SeqCst);
            }
        }
        match cx.s3_path() {
            s3s::path::S3Path::Bucket { bucket } | s3s::path::S3Path::Object { bucket, .. }
                if !self.root.join(&**bucket).is_dir() =>
            {
                Err(s3s::s3_error!(NoSuchBucket))
            }
            _ => Ok(()),
        }
    }
}

/// Serve `root` on a new loopback port until the returned sender says stop.
async fn serve(root: &Path, limit: &Arc<Limit>) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    builder.set_access(Rules {
        root: root.to_path_buf(),
        limit: Arc::clone(limit),
        stop: stop.clone(),
    });
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let mut accepting = stopped.clone();
        loop {
            let socket = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        // As a real server does: without it, a response's head
                        // and its streamed body wait out the client's delayed
                        // ACK (40 ms a request on Linux loopback).
                        let _ = socket.set_nodelay(true);
                        socket
                    }
                    Err(_) => continue,
                },
                _ = accepting.changed() => return,
            };
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            let mut stopping = stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = connection => {}
                    _ = stopping.changed() => {}
                }
            });
        }
    });
    (addr, stop)
}

impl S3Server {
    /// A server with these buckets, empty.
    pub async fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().expect("temp dir");
        for bucket in buckets {
            std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");
        }
        let limit = Arc::new(Limit {
            writes_left: AtomicU64::new(u64::MAX),
            under: std::sync::Mutex::new(String::new()),
            requests: Default::default(),
            hold: Default::default(),
            reached: Default::default(),
            release: Default::default(),
            refuse: Default::default(),
        });
        let (addr, stop) = serve(root.path(), &limit).await;
        S3Server {
            addr,
            root,
            stop,
            limit,
        }
    }

    /// Stop, then serve the same objects again (on a new port) with no limit.
    pub async fn restart(&mut self) {
        let _ = self.stop.send(true);
        self.limit.writes_left.store(u64::MAX, Ordering::SeqCst);
        let (addr, stop) = serve(self.root.path(), &self.limit).await;
        self.addr = addr;
        self.stop = stop;
    }

    /// The folder of the bucket's objects: `root/bucket/key`.
    pub fn folder(&self, bucket: &str) -> PathBuf {
        self.root.path().join(bucket)
    }

    /// Stop the server (close its port and every connection) when `writes`
    /// more writes of objects whose key holds `under` have been served.
    pub fn stop_after_writes(&self, under: &str, writes: u64) {
        if let Ok(mut part) = self.limit.under.lock() {
            *part = under.to_string();
        }
        self.limit.writes_left.store(writes, Ordering::SeqCst);
    }

    /// The requests served so far (operation, key), and none from now on.
    pub fn take_requests(&self) -> Vec<(String, String)> {
        self.limit
            .requests
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Hold the next request of `op` (`PutObject`, `UploadPart`...) on a key
    /// holding `part`: `held` returns once it arrived, `release` lets it on.
    pub fn hold(&self, op: &str, part: &str) {
        if let Ok(mut hold) = self.limit.hold.lock() {
            *hold = Some((op.to_string(), part.to_string()));
        }
    }

    pub async fn held(&self) {
        self.limit.reached.notified().await;
    }

    pub fn release(&self) {
        self.limit.release.notify_waiters();
    }

    /// Refuse requests of `op` (AccessDenied) once `after` were served.
    pub fn refuse(&self, op: &str, after: u64) {
        if let Ok(mut refuse) = self.limit.refuse.lock() {
            *refuse = Some((op.to_string(), after));
        }
    }

    /// Multipart uploads begun and neither completed nor aborted: their
    /// parts are what a real bucket keeps (and bills).
    pub fn uploads_in_progress(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with(".upload-") || name.starts_with(".upload_id-")
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `orgsql` with the environment a user of this server would have:
    /// its endpoint, a key, and no profile file of the machine's.
    pub fn env(&self, command: &mut std::process::Command, secret: &str) {
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
