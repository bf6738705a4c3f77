//! The credentials inventory: API tokens and admin API keys as tables, the
//! per-user fallback when the org-wide token listing is refused, and the
//! second, scoped key the API Access API takes.

use orgsql::api::{ApiKey, Client};
use orgsql::emulator::{AccessRules, Emulator, EmulatorConfig, Faults};

use crate::common::*;

async fn with_access(access: AccessRules, page_size_cap: Option<usize>) -> Emulator {
    Emulator::start(EmulatorConfig {
        org: spec(120, 300),
        page_size_cap,
        access,
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

fn millis(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("NULL".to_string(), |t| t.timestamp_millis().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_keys_are_the_apis_across_pages() {
    let emu = emulator(spec(120, 300), Faults::default(), Some(7)).await;
    let org = emu.org();
    let ctx = session(emu.client_config());
    let mut expected: Vec<Vec<String>> = org
        .api_tokens
        .iter()
        .map(|t| {
            let owner = &org.users[t.owner];
            vec![
                t.id.clone(),
                owner.account_id.clone(),
                t.label.clone(),
                if t.blocked { "BLOCKED" } else { "ALLOWED" }.to_string(),
                millis(Some(t.created_at)),
                millis(t.expires_at),
                millis(t.last_active),
                t.scopes.join(","),
                owner.email.clone(),
                "organization".to_string(),
            ]
        })
        .collect();
    expected.sort();
    assert!(expected.len() > 14, "more than two pages of tokens");
    let got = sql_rows(
        &ctx,
        "SELECT token_id, account_id, label, status, \
         coalesce(CAST(CAST(created_at AS BIGINT) / 1000 AS VARCHAR), 'NULL'), \
         coalesce(CAST(CAST(expires_at AS BIGINT) / 1000 AS VARCHAR), 'NULL'), \
         coalesce(CAST(CAST(last_active_at AS BIGINT) / 1000 AS VARCHAR), 'NULL'), \
         scopes, owner_email, source FROM api_tokens ORDER BY 1",
    )
    .await;
    assert_eq!(got, expected);
    assert_eq!(
        emu.requests("/api-tokens") as usize,
        org.api_tokens.len().div_ceil(7)
    );
    // pageSize and cursor only: anything else is an error at this API.
    let query = emu.last_query("/api-tokens").expect("a query");
    assert!(
        form_urlencoded::parse(query.as_bytes()).all(|(k, _)| k == "pageSize" || k == "cursor"),
        "{query}"
    );

    let mut expected: Vec<Vec<String>> = org
        .api_keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.label.to_string(),
                k.scopes.join(","),
                (!k.scopes.is_empty()).to_string(),
                millis(k.expires_at),
                org.users[k.created_by].account_id.clone(),
                k.revoked.map_or("NULL".to_string(), |(by, _)| {
                    org.users[by].account_id.clone()
                }),
            ]
        })
        .collect();
    expected.sort();
    let got = sql_rows(
        &ctx,
        "SELECT key_id, label, scopes, CAST(scoped AS VARCHAR), \
         coalesce(CAST(CAST(expires_at AS BIGINT) / 1000 AS VARCHAR), 'NULL'), \
         created_by_id, coalesce(revoked_by_id, 'NULL') FROM api_keys ORDER BY 1",
    )
    .await;
    assert_eq!(got, expected);

    // Audit events name real tokens: a join finds their owners.
    let unmatched = column(
        &ctx,
        "SELECT count(*) FROM events e JOIN users u ON u.account_id = e.actor_id \
         WHERE e.actor_auth_type = 'api-token' AND u.claim_status = 'managed' \
         AND e.actor_token_id NOT IN (SELECT token_id FROM api_tokens)",
    )
    .await;
    assert_eq!(unmatched, vec!["0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_listing_falls_back_to_each_managed_user_and_says_so() {
    let access = AccessRules {
        refuse_token_listing: true,
        ..AccessRules::default()
    };
    let emu = with_access(access, None).await;
    let org = emu.org();
    let client = Client::new(fast_retries(emu.client_config())).expect("client");
    let ctx = orgsql::context(&client).expect("session");
    let mut expected: Vec<Vec<String>> = org
        .api_tokens
        .iter()
        .map(|t| vec![t.id.clone(), org.users[t.owner].account_id.clone()])
        .collect();
    expected.sort();
    let got = sql_rows(
        &ctx,
        "SELECT token_id, account_id FROM api_tokens WHERE source = 'user' ORDER BY 1",
    )
    .await;
    assert_eq!(got, expected);
    let managed = org
        .users
        .iter()
        .filter(|u| u.claim_status == "managed")
        .count();
    assert_eq!(emu.requests("/manage/api-tokens") as usize, managed);
    let notes = client.take_notices();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("one call per user"), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_api_gets_the_key_it_takes_and_a_missing_scope_is_named() {
    let scoped = "scoped-key-3c1f-canary";
    let access = AccessRules {
        scoped_key: Some(scoped.to_string()),
        ..AccessRules::default()
    };
    let emu = with_access(access, None).await;
    // With both keys: users with the main key, tokens and keys with the
    // scoped one (the emulator refuses any other pairing).
    let mut config = emu.client_config();
    config.scoped_api_key = Some(ApiKey::new(scoped));
    let ctx = session(config);
    for sql in [
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM api_tokens WHERE source = 'organization'",
        "SELECT count(*) FROM api_keys",
    ] {
        let count = column(&ctx, sql).await;
        assert_ne!(count, vec!["0"], "{sql}");
    }
    assert_eq!(emu.requests("/manage/api-tokens"), 0, "no fallback needed");

    // With the main key only: the keys table names the scope it lacks.
    let ctx = session(emu.client_config());
    let error = query(&ctx, "SELECT * FROM api_keys")
        .await
        .expect_err("refused");
    let message = orgsql::error::message(&error);
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(message.contains("read:tokens:admin"), "{message}");
    assert!(message.contains("ATLASSIAN_SCOPED_API_KEY"), "{message}");

    // Through the binary, both keys from the environment: neither is shown.
    let output = orgsql_on(&emu)
        .env("ATLASSIAN_SCOPED_API_KEY", scoped)
        .args([
            "-v",
            "-c",
            "SELECT count(*) FROM api_keys",
            "-c",
            "SELECT * FROM orgsql_requests",
        ])
        .output()
        .expect("orgsql runs");
    succeeded(&output, "both keys from the environment");
    let main = emu.connection_json()["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(scoped) && !text.contains(&main), "{text}");
    }
}

/// An export whose keys cannot read a table leaves it out, says so, and
/// records it; the rest is written, and a control that needs it fails to
/// run rather than pass.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_without_the_scoped_key_skips_what_it_cannot_read() {
    let access = AccessRules {
        scoped_key: Some("only-for-tokens".to_string()),
        ..AccessRules::default()
    };
    let emu = with_access(access, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = orgsql_on(&emu)
        .args(["export", "--out", &dir.path().display().to_string()])
        .output()
        .expect("orgsql runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("api_keys: skipped"), "{stderr}");
    assert!(
        stderr.contains("note: api_tokens"),
        "the fallback is said: {stderr}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    // The SCIM tables are skipped: no SCIM token is configured here.
    let (scim, skipped): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = manifest["skipped"]
        .as_array()
        .expect("skipped tables")
        .iter()
        .partition(|s| s["name"].as_str().unwrap_or_default().starts_with("scim_"));
    assert_eq!(scim.len(), 3, "{scim:?}");
    assert!(
        scim.iter().all(|s| s["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no SCIM token")),
        "{scim:?}"
    );
    // Every API Access API table but api_tokens (which falls back) needs
    // the scoped key.
    let mut names: Vec<&str> = skipped.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "api_keys",
            "oauth_clients",
            "service_account_oauth_clients",
            "service_account_tokens",
            "service_accounts"
        ]
    );
    for table in skipped {
        assert!(
            table["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("read:tokens:admin"),
            "{table}"
        );
    }
    let written: Vec<&str> = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        written.contains(&"users") && written.contains(&"api_tokens"),
        "{written:?}"
    );
    assert!(!dir.path().join("api_keys.parquet").exists());

    // The controls on keys cannot run on that snapshot: an error, not a pass.
    let check = orgsql_alone()
        .args([
            "--snapshot",
            &dir.path().display().to_string(),
            "check",
            "--controls",
            "api_keys_unscoped",
        ])
        .output()
        .expect("orgsql runs");
    assert_eq!(check.status.code(), Some(2));
}
