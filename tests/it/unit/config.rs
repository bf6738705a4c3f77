//! Unit tests of `orgsql::config` (src/config.rs).

use orgsql::config::*;

#[test]
fn what_is_hidden_as_a_key_and_what_is_shown() {
    let key = "ATATT3xFfGF0q9Zr-_Lk2mWv8PbN0cYt4Hs7Ue1Dj5Ga3=ABCD1234";
    assert_eq!(
        shown(&format!("/home/me/.config/orgsql/{key}: no such file")),
        "/home/me/.config/orgsql/[a value that looks like a key, not shown]: no such file"
    );
    assert_eq!(
        shown(&format!("\"{key}\"")),
        "\"[a value that looks like a key, not shown]\""
    );
    // What these fields hold when filled in rightly is shown as it is.
    for value in [
        "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        "ATLASSIAN_API_KEY_PRODUCTION_2026",
        "/home/alice/.config/orgsql/acme-production.key",
        "op read op://Private/Atlassian admin key/credential",
        "connection acme-eu-production-2026",
    ] {
        assert_eq!(shown(value), value);
    }
}
