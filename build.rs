//! Embeds the compliance pack (`queries/*.sql`) and the watch rules
//! (`rules/*.sql`) in the binary, so `orgsql check` and `orgsql watch` run
//! the same SQL wherever it is installed; and the commit
//! it is built from, which every report names.

// A build script reports a failure by panicking.
#![allow(clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn main() {
    embed("queries", "PACK", "The built-in controls", "pack.rs");
    embed("rules", "RULES", "The built-in watch rules", "rules.rs");
    println!("cargo:rustc-env=ORGSQL_COMMIT={}", commit());
}

/// The commit checked out, "unknown" without git or a repository (a
/// source tarball): the build never fails for want of it. Rebuilt when
/// HEAD moves.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".to_string();
    };
    // HEAD, the branch it names, and packed refs: a commit changes one of them.
    for file in ["HEAD", "packed-refs"]
        .into_iter()
        .map(str::to_string)
        .chain(git(&["symbolic-ref", "-q", "HEAD"]))
    {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &file])
            .filter(|p| Path::new(p).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // No "modified" mark: the script reruns when HEAD moves, not on every
    // edit, so it could not be kept true.
    commit
}

/// The `.sql` files of `folder` as `pub const NAME: &[(&str, &str)]`
/// (file name, text) in `OUT_DIR/out`, in name order.
fn embed(folder: &str, name: &str, doc: &str, out: &str) {
    println!("cargo:rerun-if-changed={folder}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code =
        format!("/// {doc}: (file name, text).\npub const {name}: &[(&str, &str)] = &[\n");
    for path in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({file:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join(out);
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
