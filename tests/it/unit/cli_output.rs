//! Unit tests of `orgsql::cli::output` (src/cli/output.rs).

use orgsql::cli::output::visible;

#[test]
fn control_and_formatting_characters_are_shown_not_acted_on() {
    assert_eq!(visible("Zoë Schmidt"), "Zoë Schmidt");
    assert_eq!(
        visible("a\u{1b}[2Jb\u{7}c\rd\u{8}e\u{0}f\u{202e}g\nh\u{9b}i"),
        "a\\u{1b}[2Jb\\u{7}c\\rd\\u{8}e\\u{0}f\\u{202e}g\\nh\\u{9b}i"
    );
    assert_eq!(visible("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
}
