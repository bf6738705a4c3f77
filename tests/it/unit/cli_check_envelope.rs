//! Unit tests of `orgsql::cli::check::envelope` (src/cli/check/envelope.rs).

use orgsql::cli::check::envelope::*;

#[test]
fn a_flag_naming_a_key_token_or_secret_has_its_value_redacted() {
    let args = [
        "orgsql",
        "--api-key",
        "sekrit1",
        "--token=sekrit2",
        "--client-secret",
        "sekrit3",
        "check",
        "--param",
        "token_days=30",
        "--fail-on",
        "high",
    ]
    .map(String::from);
    let line = redacted(args).join(" ");
    assert_eq!(
        line,
        "orgsql --api-key [redacted] --token=[redacted] --client-secret [redacted] check \
         --param token_days=30 --fail-on high"
    );
}

#[test]
fn a_url_loses_its_credentials() {
    assert_eq!(
        without_credentials("https://me:pw@api.example.com/base?key=x#f"),
        "https://api.example.com/base"
    );
}
