//! The source's shape: modules depend downhill, never in a circle. A
//! module and its own children are one unit (the parent holds what they
//! share); between any others, an import one way only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as its path from the crate root (`["cli", "runner"]`).
type Module = Vec<String>;

/// Every module file under `src/` (the library; `main.rs` is the binary
/// on top of it) and the modules its code names. `skip_lib` leaves out the
/// root file (`lib.rs`), for a crate whose modules another re-exports.
fn modules(root: &Path, skip_lib: bool) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, prefix: &Module, found: &mut BTreeMap<Module, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                let mut module = prefix.clone();
                module.push(name);
                walk(&path, &module, found);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = prefix.clone();
                match stem {
                    "mod" | "lib" => {}
                    "main" if prefix.is_empty() => continue,
                    _ => module.push(stem.to_string()),
                }
                found.insert(module, path);
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(root, &Vec::new(), &mut found);
    if skip_lib {
        found.remove(&Module::new());
    }
    found
}

/// The code of a file without comments and string literals, roughly: enough
/// that a path in a doc comment or a message is not taken for a use.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut in_string = false;
        let mut previous = ' ';
        for c in line.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// The modules a file's code names: `crate::a::b`, `super::x`, `self::x`,
/// and a child's name at the start of a path (`exec::is_query` in cli).
fn named(
    module: &Module,
    is_dir_module: bool,
    text: &str,
    all: &BTreeMap<Module, PathBuf>,
) -> BTreeSet<Module> {
    let code = code(text);
    let mut found = BTreeSet::new();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains("::"))
        .collect();
    // A file `a/b.rs` is module a::b; its `super` is a. `a/mod.rs` is a;
    // its `super` is a's parent, its children are a::x.
    let home: Module = if is_dir_module {
        module.clone()
    } else {
        module[..module.len().saturating_sub(1)].to_vec()
    };
    for word in words {
        let mut parts = word.split("::").filter(|p| !p.is_empty()).peekable();
        let mut path: Module = match parts.peek().copied() {
            Some("crate") => {
                parts.next();
                Vec::new()
            }
            Some("super") => {
                parts.next();
                let mut base = home.clone();
                base.pop();
                if is_dir_module {
                    // From a/mod.rs, `super` is a's parent: popped above.
                } else {
                    // From a/b.rs, `super` is a.
                    base = home.clone();
                }
                while parts.peek() == Some(&"super") {
                    parts.next();
                    if base.is_empty() {
                        break;
                    }
                    base.pop();
                }
                base
            }
            Some("self") => {
                parts.next();
                module.clone()
            }
            Some(first)
                if all.contains_key(&[module.clone(), vec![first.to_string()]].concat()) =>
            {
                module.clone()
            }
            _ => continue,
        };
        // The longest prefix that is a module.
        let mut longest = path.clone();
        for part in parts {
            path.push(part.to_string());
            if all.contains_key(&path) {
                longest = path.clone();
            }
        }
        // A module and its own parents or children are one unit (a parent
        // holds what its children share and declares them): not an import.
        let related = longest.starts_with(module) || module.starts_with(&longest);
        if !related && all.contains_key(&longest) {
            found.insert(longest);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = modules(&root.join("src"), false);
    // The Admin API crate's modules are orgsql's `api`, `emulator` and `text`
    // (re-exported at those paths): one graph, as before they moved.
    let admin_api = modules(&root.join("crates/admin-api/src"), true);
    assert!(
        admin_api.contains_key(&vec!["api".to_string(), "client".to_string()]),
        "crates/admin-api/src/api/client.rs found"
    );
    all.extend(admin_api);
    assert!(all.len() > 30, "{} modules found", all.len());
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &all {
        let text = std::fs::read_to_string(path).expect("source readable");
        let is_dir_module = path
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        edges.insert(module.clone(), named(module, is_dir_module, &text, &all));
    }
    // The reader finds imports at all: a few it must see.
    let module = |path: &str| path.split("::").map(str::to_string).collect::<Module>();
    for (from, to) in [
        ("cli::runner", "cli::meta"),
        ("cli::export::bucket", "cli::export::folder"),
        ("cli::check::command", "session"),
        ("emulator::routes", "emulator::org"),
        ("session", "api"),
    ] {
        assert!(
            edges
                .get(&module(from))
                .is_some_and(|e| e.contains(&module(to))),
            "{from} imports {to}, unseen: {:?}",
            edges.get(&module(from))
        );
    }
    // Every cycle, by depth-first search from each module.
    let mut cycles: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                    let first = cycle.iter().min().cloned().unwrap_or_default();
                    let at_first = cycle.iter().position(|m| *m == first).unwrap_or(0);
                    cycle.rotate_left(at_first);
                    cycles.insert(cycle);
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    let shown: Vec<String> = cycles
        .iter()
        .map(|c| format!("{} -> {}", c.join(" -> "), c[0]))
        .collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}
