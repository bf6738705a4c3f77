//! Object storage under stress, through the real binary against the S3
//! server on loopback: two exports racing into one prefix, uploads
//! interrupted (an error, Ctrl-C), and a prefix read without a listing or
//! a request per file.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use orgsql::emulator::Faults;

use crate::common::{emulator, orgsql_alone, orgsql_on, spec, succeeded};
use crate::s3server::{ACCESS_KEY, S3Server, SECRET_KEY};

fn on(server: &S3Server, mut command: Command) -> Command {
    server.env(&mut command, SECRET_KEY);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The problems `tampered` finds in a folder of the bucket, but files no
/// manifest lists (a loser's or a stopped run's): what it lists is whole.
async fn damaged(folder: &std::path::Path) -> Vec<String> {
    orgsql::snapshot::tampered(&folder.into())
        .await
        .expect("a manifest")
        .into_iter()
        .filter(|p| !p.contains("was added after the export"))
        .collect()
}

/// An export held at its first manifest write while another runs whole:
/// the held one, released, finds the manifest changed since it read it and
/// stops, naming the prefix; the winner's manifest and files are intact.
/// Into a new prefix (create-if-absent) and into one that holds an export
/// (the version read at the start).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_export_into_a_prefix_fails_cleanly_and_damages_nothing() {
    let emu = emulator(spec(20, 200), Faults::default(), None).await;
    let server = S3Server::start(&["race"]).await;
    let prefix = "s3://race/org/";
    let folder = server.folder("race").join("org");
    for round in ["a new prefix", "a prefix that holds an export"] {
        // Something new for each export to write.
        emu.change(|org| org.users[0].name.push('x'));
        server.hold("PutObject", "manifest.json");
        let loser = on(&server, orgsql_on(&emu))
            .args(["--max-retries", "0", "export", "--out", prefix])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgsql runs");
        server.held().await;
        let marker = format!("Winner of {round}");
        let name = marker.clone();
        emu.change(move |org| org.users[1].name = name);
        let winner = on(&server, orgsql_on(&emu))
            .args(["export", "--out", prefix])
            .output()
            .expect("orgsql runs");
        succeeded(&winner, round);
        server.release();
        let lost = tokio::task::spawn_blocking(move || loser.wait_with_output())
            .await
            .expect("joined")
            .expect("orgsql ends");
        let stderr = text(&lost.stderr);
        assert!(!lost.status.success(), "{round}: the loser must fail");
        assert!(
            stderr.contains("was written by another export since this one read s3://race/org/")
                && stderr.contains("Export again once the other has finished"),
            "{round}: {stderr}"
        );
        assert_eq!(damaged(&folder).await, Vec::<String>::new(), "{round}");
        // What the prefix lists is the winner's export.
        let names = on(&server, orgsql_alone())
            .args(["--snapshot", prefix, "--format", "csv", "-c"])
            .arg("SELECT name FROM users WHERE name LIKE 'Winner of%'")
            .output()
            .expect("orgsql runs");
        assert_eq!(
            text(&succeeded(&names, round)),
            format!("name\n{marker}\n"),
            "{round}"
        );
    }
    // Alone again, an export adds to it as before.
    succeeded(
        &on(&server, orgsql_on(&emu))
            .args(["export", "--out", prefix])
            .output()
            .expect("orgsql runs"),
        "the next export",
    );
    assert_eq!(damaged(&folder).await, Vec::<String>::new());
}

/// A store on the test server, made here (no environment).
fn store(server: &S3Server) -> Arc<dyn object_store::ObjectStore> {
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("parts")
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_endpoint(format!("http://{}", server.addr))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .expect("a store");
    Arc::new(store)
}

/// A file of 25 MiB goes up in three parts. When a part is refused, and
/// when the upload is stopped (as Ctrl-C stops it) while a part is on its
/// way, the upload is aborted: no object, and no parts kept by the server.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_upload_is_aborted_and_leaves_no_parts() {
    let server = S3Server::start(&["parts"]).await;
    let url = url::Url::parse("s3://parts/p/").expect("a URL");
    let remote = orgsql::storage::Remote::in_store(&url, store(&server)).expect("a prefix");
    let local = tempfile::tempdir().expect("temp dir");
    let file = local.path().join("big.bin");
    let bytes: Vec<u8> = (0..25u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).expect("written");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);

    // A part refused: the upload fails and is aborted.
    server.refuse("UploadPart", 1);
    let refused = remote.upload("refused.bin", file.clone(), &stop).await;
    assert!(refused.is_err(), "the upload must fail");
    server.refuse("none", 0);
    let requests = server.take_requests();
    let count = |op: &str| requests.iter().filter(|(o, _)| o == op).count();
    assert_eq!(count("CreateMultipartUpload"), 1, "{requests:?}");
    assert_eq!(count("AbortMultipartUpload"), 1, "{requests:?}");
    assert_eq!(server.uploads_in_progress(), 0);
    assert!(!server.folder("parts").join("p/refused.bin").exists());

    // Stopped while its second part is held by the server.
    server.hold("UploadPart", "stopped.bin");
    let upload = {
        let (remote, file, stop) = (remote.clone(), file.clone(), stop.clone());
        tokio::spawn(async move { remote.upload("stopped.bin", file, &stop).await })
    };
    server.held().await;
    stop_tx.send(true).expect("sent");
    server.release();
    let stopped = upload.await.expect("joined");
    let message = stopped.expect_err("stopped").to_string();
    assert!(message.contains("the export was interrupted"), "{message}");
    let requests = server.take_requests();
    assert!(
        requests.iter().any(|(o, _)| o == "AbortMultipartUpload"),
        "{requests:?}"
    );
    assert_eq!(server.uploads_in_progress(), 0);
    assert!(!server.folder("parts").join("p/stopped.bin").exists());

    // Not stopped, the same file arrives whole.
    let (_keep, go) = tokio::sync::watch::channel(false);
    remote
        .upload("whole.bin", file.clone(), &go)
        .await
        .expect("uploaded");
    assert_eq!(
        std::fs::read(server.folder("parts").join("p/whole.bin")).expect("there"),
        bytes
    );
    assert_eq!(server.uploads_in_progress(), 0);
}

/// Ctrl-C while the binary uploads an export: it stops at once, says so,
/// and the prefix's manifest lists
/// none of the files it had not finished.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_an_upload_stops_the_export_cleanly() {
    let emu = emulator(spec(20, 200), Faults::default(), None).await;
    let server = S3Server::start(&["ctrlc"]).await;
    let prefix = "s3://ctrlc/org/";
    succeeded(
        &on(&server, orgsql_on(&emu))
            .args(["export", "--out", prefix])
            .output()
            .expect("orgsql runs"),
        "the first export",
    );
    let folder = server.folder("ctrlc").join("org");
    let event_files = || {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(folder.join("manifest.json")).expect("a manifest"),
        )
        .expect("JSON");
        manifest["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["name"] == "events")
            .expect("events")["files"]
            .clone()
    };
    let before = event_files();
    emu.change(|org| {
        let mut event = org.events[0].clone();
        event.id = "00000000-0000-4000-8000-0000000000c1".to_string();
        event.time += chrono::Duration::minutes(1);
        event.processed_at = event.time + chrono::Duration::seconds(2);
        org.events.insert(0, event);
    });
    server.hold("PutObject", "events/");
    let child = on(&server, orgsql_on(&emu))
        .args(["export", "--out", prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgsql runs");
    server.held().await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let output: Output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("orgsql ends");
    server.release();
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the export was interrupted")
            && stderr.contains("its manifest lists the earlier export"),
        "{stderr}"
    );
    assert_eq!(event_files(), before, "the new events are not listed");
    assert_eq!(damaged(&folder).await, Vec::<String>::new());
    assert_eq!(server.uploads_in_progress(), 0);
}

/// A query on a prefix reads the manifest, then the files it lists: no
/// listing and no request per file to learn a size. A file gone from the
/// bucket fails the query that reads it, naming the file; it is never
/// read as empty.
#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_is_read_without_a_listing_or_a_request_per_file() {
    let emu = emulator(spec(20, 400), Faults::default(), None).await;
    let server = S3Server::start(&["reads"]).await;
    let prefix = "s3://reads/org/";
    succeeded(
        &on(&server, orgsql_on(&emu))
            .args(["export", "--out", prefix])
            .output()
            .expect("orgsql runs"),
        "export",
    );
    server.take_requests();
    let query = || {
        on(&server, orgsql_alone())
            .args(["--snapshot", prefix, "--format", "csv", "-c"])
            .arg("SELECT count(*) FROM events")
            .output()
            .expect("orgsql runs")
    };
    let counted = query();
    let served = emu.org().events.len();
    assert_eq!(
        text(&succeeded(&counted, "query")),
        format!("count(*)\n{served}\n")
    );
    let requests = server.take_requests();
    let asked: Vec<&(String, String)> = requests
        .iter()
        .filter(|(op, _)| op.starts_with("List") || op == "HeadObject")
        .collect();
    assert!(asked.is_empty(), "{asked:?} of {requests:?}");
    assert!(
        requests
            .iter()
            .any(|(op, key)| op == "GetObject" && key.ends_with("manifest.json")),
        "{requests:?}"
    );

    // An event file gone: the query fails, naming it.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(server.folder("reads").join("org/manifest.json")).expect("a manifest"),
    )
    .expect("JSON");
    let events = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "events")
        .expect("events");
    let gone = events["files"][0]["path"].as_str().expect("a path");
    std::fs::remove_file(server.folder("reads").join("org").join(gone)).expect("removed");
    let failed = query();
    let stderr = text(&failed.stderr);
    assert!(!failed.status.success(), "{}", text(&failed.stdout));
    assert!(
        stderr.contains(&format!("{prefix}{gone} is missing")),
        "{stderr}"
    );
}
