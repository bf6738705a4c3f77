//! `orgsql verify`, through the binary: an export's files and row counts,
//! a JSON report's results digest and counts, `--sha256`, and what it
//! refuses.

use std::path::Path;

use orgsql::emulator::Faults;

use crate::common::{emulator, flip_a_byte, orgsql_alone, orgsql_on, spec, succeeded};

fn verify(args: &[&str]) -> (Option<i32>, String, String) {
    let output = orgsql_alone()
        .arg("verify")
        .args(args)
        .output()
        .expect("orgsql runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn copy(from: &Path, to: &Path) {
    let copied = std::process::Command::new("cp")
        .args(["-a", &from.display().to_string(), &to.display().to_string()])
        .status()
        .expect("cp runs");
    assert!(copied.success());
}

fn sha256_of(path: &Path) -> String {
    orgsql::snapshot::sha256(&std::fs::read(path).expect("readable"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_verifies_and_one_changed_byte_or_count_fails() {
    let emu = emulator(spec(40, 300), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let good = tmp.path().join("good");
    let good_arg = good.display().to_string();
    succeeded(
        &orgsql_on(&emu)
            .args(["export", "--out", &good_arg])
            .output()
            .expect("orgsql runs"),
        "export",
    );

    // Intact: every data file (as the folder holds them) and its bytes.
    let files: Vec<_> = crate::common::files_below(&good)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).expect("a file").len())
        .sum();
    let (code, out, err) = verify(&[&good_arg]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!(
            "{good_arg}: intact: {} files ({bytes} bytes, ",
            files.len()
        )),
        "{out}"
    );
    assert!(out.contains("not checked: manifest.json itself"), "{out}");
    // Its manifest.json named instead of the folder: the same export.
    let manifest = good.join("manifest.json");
    let (code, out, _) = verify(&[&manifest.display().to_string()]);
    assert_eq!(code, Some(0), "{out}");

    // --sha256: the manifest's own digest, computed here from the file.
    let digest = sha256_of(&manifest);
    let (code, out, _) = verify(&[&good_arg, "--sha256", &digest]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "checked: manifest.json: sha256 {digest}, as --sha256 expects"
        )),
        "{out}"
    );

    // One byte changed in a data file, its size and time as they were.
    let flipped = tmp.path().join("flipped");
    copy(&good, &flipped);
    flip_a_byte(&flipped.join("groups.parquet"));
    let (code, out, _) = verify(&[&flipped.display().to_string()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("groups: groups.parquet has changed since the export (sha256 "),
        "{out}"
    );
    assert!(out.contains("1 problem(s)"), "{out}");

    // One count changed in manifest.json: users has one row per user of
    // the emulated organization.
    let users = emu.org().users.len();
    let counted = tmp.path().join("counted");
    copy(&good, &counted);
    let text = std::fs::read_to_string(counted.join("manifest.json")).expect("manifest");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let entry = value["tables"]
        .as_array_mut()
        .expect("tables")
        .iter_mut()
        .find(|t| t["name"] == "users")
        .expect("users exported");
    assert_eq!(entry["rows"], users);
    entry["rows"] = (users + 1).into();
    std::fs::write(
        counted.join("manifest.json"),
        serde_json::to_string_pretty(&value).expect("JSON"),
    )
    .expect("written");
    let counted_arg = counted.display().to_string();
    let (code, out, _) = verify(&[&counted_arg]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "users: its files hold {users} rows where manifest.json records {}",
            users + 1
        )),
        "{out}"
    );
    assert!(out.contains("1 problem(s)"), "{out}");
    // Held to the first manifest's digest, the rewritten one fails on it too.
    let (code, out, _) = verify(&[&counted_arg, "--sha256", &digest]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "manifest.json: sha256 {} where --sha256 expects {digest}",
            sha256_of(&counted.join("manifest.json"))
        )),
        "{out}"
    );
    assert!(out.contains("2 problem(s)"), "{out}");
}

/// The `sha256 <hex>  FILE` line `check --output` says on stderr.
fn said_sha256(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no sha256 said: {stderr}"))
        .to_string()
}

/// The bytes of a JSON report's results as written: from `"results": ` to
/// the object's end.
fn results_text(text: &str) -> &str {
    let start = text.find("\n  \"results\": ").expect("results") + "\n  \"results\": ".len();
    let end = text.rfind("\n}").expect("the object's end");
    &text[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_report_verifies_and_one_changed_byte_or_count_fails() {
    let emu = emulator(spec(40, 300), Faults::default(), None).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let report = tmp.path().join("report.json");
    let report_arg = report.display().to_string();
    let output = orgsql_on(&emu)
        .args(["check", "--format", "json", "--output", &report_arg])
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stderr}");
    let said = said_sha256(&stderr);
    assert_eq!(said, sha256_of(&report));
    let text = std::fs::read_to_string(&report).expect("report");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");

    // What the report states, counted here from its results.
    let results = value["results"].as_array().expect("results");
    let statuses = |r: &serde_json::Value, status: &str| {
        r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["status"] == status)
            .count()
    };
    let outcomes = |outcome: &str| results.iter().filter(|r| r["outcome"] == outcome).count();
    for r in results {
        for status in ["alarm", "ok", "info"] {
            assert_eq!(r["counts"][status], statuses(r, status), "{}", r["id"]);
        }
    }
    let findings = |status: &str| results.iter().map(|r| statuses(r, status)).sum::<usize>();
    let summary = &value["summary"];
    assert_eq!(summary["results"], results.len());
    assert_eq!(summary["passed"], outcomes("pass"));
    assert_eq!(summary["alarmed"], outcomes("alarm"));
    assert_eq!(summary["failed_to_run"], outcomes("error"));
    assert_eq!(summary["skipped"], outcomes("skipped"));
    assert_eq!(summary["findings"]["alarm"], findings("alarm"));
    assert!(outcomes("alarm") > 0 && findings("ok") > 0, "{summary}");
    assert_eq!(
        value["envelope"]["results_sha256"],
        orgsql::snapshot::sha256(results_text(&text).as_bytes())
    );

    // Intact, and with the sha256 said when it was written.
    let (code, out, err) = verify(&[&report_arg]);
    assert_eq!(code, Some(0), "{out}{err}");
    let total = findings("alarm") + findings("ok") + findings("info");
    assert!(
        out.contains(&format!(
            "intact: a JSON report of `orgsql check` ({} results, {total} findings)",
            results.len()
        )),
        "{out}"
    );
    assert!(out.contains("not checked: the envelope"), "{out}");
    let (code, out, _) = verify(&[&report_arg, "--sha256", &said]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("the file: sha256 {said}, as --sha256 expects")),
        "{out}"
    );

    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("written");
        path.display().to_string()
    };

    // One byte changed in the results: a letter of a finding's reason.
    let results_at = text.find("\n  \"results\": ").expect("results");
    let reason = results_at
        + text[results_at..]
            .find("\"reason\": \"")
            .expect("a finding")
        + "\"reason\": \"".len();
    let mut changed = text.clone().into_bytes();
    changed[reason] = if changed[reason] == b'x' { b'y' } else { b'x' };
    let changed = write("byte.json", &String::from_utf8(changed).expect("UTF-8"));
    let (code, out, _) = verify(&[&changed]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("results: not as written: their sha256 is "),
        "{out}"
    );
    // ... found by --sha256 as well.
    let (code, out, _) = verify(&[&changed, "--sha256", &said]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("where --sha256 expects"), "{out}");
    assert!(out.contains("2 problem(s)"), "{out}");

    // One count changed in the summary (outside the results' digest).
    let alarmed = outcomes("alarm");
    let count = text.replacen(
        &format!("\"alarmed\": {alarmed},"),
        &format!("\"alarmed\": {},", alarmed + 1),
        1,
    );
    assert_ne!(count, text);
    let (code, out, _) = verify(&[&write("count.json", &count)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "summary: alarmed says {} where the results hold {alarmed}",
            alarmed + 1
        )),
        "{out}"
    );

    // A result's count changed and the results' digest made to match it:
    // the count still disagrees with the findings.
    let alarming = results
        .iter()
        .find(|r| r["outcome"] == "alarm")
        .expect("an alarm");
    let (id, alarms) = (
        alarming["id"].as_str().expect("id"),
        statuses(alarming, "alarm"),
    );
    let forged_results = {
        let at = results_text(&text)
            .find(&format!("\"id\": \"{id}\""))
            .expect("the result");
        let (before, after) = results_text(&text).split_at(at);
        let counts = after.find("\"counts\": {").expect("its counts");
        let (middle, rest) = after.split_at(counts);
        format!(
            "{before}{middle}{}",
            rest.replacen(
                &format!("\"alarm\": {alarms},"),
                &format!("\"alarm\": {},", alarms - 1),
                1
            )
        )
    };
    let forged = text.replace(results_text(&text), &forged_results).replace(
        value["envelope"]["results_sha256"]
            .as_str()
            .expect("digest"),
        &orgsql::snapshot::sha256(forged_results.as_bytes()),
    );
    let (code, out, _) = verify(&[&write("forged.json", &forged)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "{id}: counts.alarm says {} where its findings hold {alarms}",
            alarms - 1
        )),
        "{out}"
    );
    assert!(!out.contains("results: not as written"), "{out}");
}

#[test]
fn what_is_neither_an_export_nor_a_json_report_is_refused_saying_what_verify_accepts() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("written");
        path.display().to_string()
    };
    let cases = [
        (write("report.md", "| Run | |\n|---|---|\n"), "not JSON"),
        (write("list.json", "[]"), "a JSON list"),
        (
            write("other.json", "{\"name\": \"x\"}"),
            "neither a report's envelope and results nor a manifest's tables",
        ),
        (
            tmp.path().display().to_string(),
            "a folder without manifest.json",
        ),
        (
            tmp.path().join("absent").display().to_string(),
            "No such file",
        ),
    ];
    for (path, found) in cases {
        let (code, out, err) = verify(&[&path]);
        assert_eq!(code, Some(2), "{path}: {out}{err}");
        assert!(err.contains(found), "{path}: {err}");
        assert!(
            err.contains("verify accepts an export") && err.contains("--format json"),
            "{path}: {err}"
        );
        assert!(out.is_empty(), "{path}: {out}");
    }
}
