//! Unit tests of `orgsql::cli::watch::deliver` (src/cli/watch/deliver.rs).

use orgsql::cli::watch::deliver::*;

/// The Standard Webhooks spec's own example: its secret, id, timestamp
/// and body give its signature.
#[test]
fn signs_as_standard_webhooks_specifies() {
    let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(
        signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[test]
fn slack_text_cannot_mention_or_link() {
    let text = slack("<!channel> & <https://evil|click> `x`");
    assert_eq!(
        text,
        "&lt;!channel&gt; &amp; &lt;https://evil|click&gt; 'x'"
    );
}
