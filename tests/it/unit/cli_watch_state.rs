//! Unit tests of `orgsql::cli::watch::state` (src/cli/watch/state.rs).

use orgsql::cli::watch::state::*;

#[test]
fn prune_forgets_only_what_no_read_can_bring_back() {
    let mut state = OrgState {
        processed_at: Some("2026-12-06T12:00:00.000Z".into()),
        ..OrgState::default()
    };
    for (id, at) in [
        ("old", "2026-12-06T10:59:59.999Z"),
        ("edge", "2026-12-06T11:00:00.000Z"),
        ("new", "2026-12-06T12:00:00.000Z"),
    ] {
        state.delivered.insert(id.into(), at.into());
    }
    state.prune();
    let kept: Vec<&str> = state.delivered.keys().map(String::as_str).collect();
    assert_eq!(kept, ["edge", "new"]);
}
