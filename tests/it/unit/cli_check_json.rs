//! Unit tests of `orgsql::cli::check::json` (src/cli/check/json.rs).

use orgsql::cli::check::Envelope;
use orgsql::cli::check::json::*;
use serde::Serialize;

/// Text nested by `nested` is what the pretty printer writes of the
/// whole, line breaks in strings and empty lists included.
#[test]
fn nested_text_is_the_pretty_printers() {
    #[derive(Serialize)]
    struct Inner {
        text: &'static str,
        list: Vec<u32>,
        empty: Vec<u32>,
    }
    #[derive(Serialize)]
    struct Outer {
        first: Vec<Inner>,
        second: Inner,
    }
    let inner = || Inner {
        text: "two\nlines \"quoted\"",
        list: vec![1, 2],
        empty: Vec::new(),
    };
    let whole = Outer {
        first: vec![inner(), inner()],
        second: inner(),
    };
    let by_parts = format!(
        "{{\n  \"first\": {},\n  \"second\": {}\n}}",
        nested(&whole.first).expect("printed"),
        nested(&whole.second).expect("printed")
    );
    assert_eq!(
        by_parts,
        serde_json::to_string_pretty(&whole).expect("printed")
    );
}

#[test]
fn a_report_written_verifies_and_a_changed_summary_does_not() {
    let mut out = Vec::new();
    write(&mut out, &[], &Envelope::begin("orgsql check")).expect("written");
    let verified = verify(&out).expect("a report");
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    let text = String::from_utf8_lossy(&out).replace("\"results\": 0", "\"results\": 1");
    let verified = verify(text.as_bytes()).expect("a report");
    assert_eq!(
        verified.problems,
        vec!["summary: results says 1 where the results hold 0".to_string()]
    );
}
