//! The README cannot drift: every SQL example in it runs against the demo
//! organization (the real binary), every result it prints is what orgsql
//! prints, and every row count it states in a comment is the demo's.

use std::path::Path;
use std::process::Output;

use crate::common::{orgsql_alone, succeeded};

const README: &str = include_str!("../../README.md");

/// The fenced code blocks: (language, lines).
fn blocks() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(&str, Vec<&str>)> = None;
    for line in README.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (fence, open.take()) {
            (Some(language), None) => open = Some((language.trim(), Vec::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some((language, mut lines))) => {
                lines.push(line);
                open = Some((language, lines));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// A command line as a POSIX shell splits it (quotes only: the README's
/// commands use nothing else).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// `orgsql ARGS` in `dir`.
fn orgsql(dir: &Path, args: &[String]) -> Output {
    orgsql_alone()
        .current_dir(dir)
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .expect("orgsql runs")
}

fn stdout(output: &Output, what: &str) -> String {
    String::from_utf8_lossy(&succeeded(output, what)).into_owned()
}

/// A statement of a REPL transcript, what the README shows it printing, and
/// whether `\x` was on.
struct Shown {
    input: String,
    printed: Vec<&'static str>,
    vertical: bool,
}

/// The statements of a transcript (`orgsql> ` and `orgsql-> ` lines) and what
/// each printed, up to its `Time:` line or the next prompt. Backslash
/// commands are followed (`\x`) or skipped.
fn transcript(lines: &[&'static str]) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    let mut vertical = false;
    let mut taking = false;
    for &line in lines {
        if let Some(input) = line.strip_prefix("orgsql> ") {
            taking = !input.starts_with('\\');
            match input {
                "\\x on" => vertical = true,
                "\\x off" => vertical = false,
                _ => {}
            }
            if taking {
                shown.push(Shown {
                    input: input.to_string(),
                    printed: Vec::new(),
                    vertical,
                });
            }
        } else if let Some(more) = line.strip_prefix("orgsql-> ") {
            if let Some(last) = shown.last_mut().filter(|_| taking) {
                last.input.push('\n');
                last.input.push_str(more);
            }
        } else if line.starts_with("Time: ") {
            taking = false;
        } else if let Some(last) = shown.last_mut().filter(|_| taking) {
            last.printed.push(line);
        }
    }
    shown
}

#[test]
fn every_result_the_readme_prints_is_the_demos() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut checked = 0;
    for (_, lines) in blocks() {
        let Some(first) = lines
            .first()
            .and_then(|l| l.strip_prefix("$ orgsql --demo"))
        else {
            continue;
        };
        if !first.trim().is_empty() {
            // One-shot: the command (its quotes may span lines), then its output.
            let mut command = String::new();
            let mut rest = lines.iter();
            for line in rest.by_ref() {
                command.push_str(line.trim_start_matches("$ "));
                command.push('\n');
                if command.matches('"').count().is_multiple_of(2) {
                    break;
                }
            }
            let args = shell_words(&command);
            let expected: String = rest.map(|l| format!("{l}\n")).collect();
            let printed = stdout(&orgsql(dir.path(), &args[1..]), &command);
            assert_eq!(printed, expected, "{command}");
            checked += 1;
            continue;
        }
        // A REPL transcript: each statement one-shot, in order, in one folder
        // (a COPY's file is read by the next statement).
        for shown in transcript(&lines[1..]) {
            let mut args = vec!["--demo".to_string(), "-c".to_string(), shown.input.clone()];
            if shown.vertical {
                args.push("--vertical".to_string());
            }
            let output = orgsql(dir.path(), &args);
            if let Some(error) = shown.printed.first().filter(|l| l.starts_with("error: ")) {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let message = stderr.lines().last().unwrap_or_default();
                // One-shot errors name where: `error: -c: ...`.
                assert_eq!(
                    message.replacen("error: -c: ", "error: ", 1),
                    *error,
                    "{}",
                    shown.input
                );
                checked += 1;
                continue;
            }
            let printed = stdout(&output, &shown.input);
            let printed: Vec<&str> = printed.lines().collect();
            let Some((last, rows)) = shown.printed.split_last() else {
                panic!("{}: the README shows no result", shown.input);
            };
            if let Some(cut) = last.strip_suffix(" shown; \\maxrows 0 shows all)") {
                // A result cut on the screen: its first rows, and how many
                // the whole result has (a pipe gets every row).
                // Column widths follow every row: compare the cells.
                let cells = |lines: &[&str]| -> Vec<Vec<String>> {
                    lines
                        .iter()
                        .filter(|l| l.starts_with('|'))
                        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
                        .collect()
                };
                let total = cut
                    .trim_start_matches('(')
                    .split_once(" rows, first ")
                    .map(|(n, _)| n);
                let expected = cells(rows);
                assert_eq!(
                    cells(&printed)[..expected.len()],
                    expected,
                    "{}",
                    shown.input
                );
                assert_eq!(
                    printed.last().copied(),
                    total.map(|n| format!("({n} rows)")).as_deref(),
                    "{}",
                    shown.input
                );
            } else {
                assert_eq!(printed, shown.printed, "{}", shown.input);
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} printed results found");
}

/// A row count stated in an example's comment: `(demo: 54 rows)`.
fn stated_rows(comment: &str) -> Option<usize> {
    let (_, after) = comment.split_once("(demo: ")?;
    after.split_once(" row")?.0.parse().ok()
}

#[test]
fn every_sql_example_runs_and_counts_what_it_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stated = 0;
    let mut statements = 0;
    for (language, lines) in blocks() {
        if language != "sql" {
            continue;
        }
        // Statements end with `;` at the end of a line (or the block); the
        // comment lines before one may state its rows.
        let mut examples: Vec<(String, Option<usize>)> = Vec::new();
        let (mut sql, mut rows) = (String::new(), None);
        for line in lines {
            let code = line.trim();
            if code.starts_with("--") && sql.trim().is_empty() {
                rows = stated_rows(code).or(rows);
                continue;
            }
            sql.push_str(line);
            sql.push('\n');
            if code.ends_with(';') {
                examples.push((std::mem::take(&mut sql), rows.take()));
            }
        }
        if !sql.trim().is_empty() {
            examples.push((sql, rows));
        }
        let mut args = vec!["--demo".to_string(), "--format".into(), "json".into()];
        for (sql, _) in &examples {
            args.extend(["-c".to_string(), sql.clone()]);
        }
        let printed = stdout(&orgsql(dir.path(), &args), &format!("{examples:?}"));
        // --format json prints one array a statement, a line each.
        let answers: Vec<usize> = printed
            .lines()
            .map(|l| {
                serde_json::from_str::<Vec<serde_json::Value>>(l)
                    .expect("a JSON array")
                    .len()
            })
            .collect();
        assert_eq!(answers.len(), examples.len(), "{printed}");
        for ((sql, rows), answer) in examples.iter().zip(answers) {
            statements += 1;
            if let Some(rows) = rows {
                assert_eq!(answer, *rows, "{sql}");
                stated += 1;
            }
        }
    }
    assert!(statements >= 10, "only {statements} SQL examples found");
    assert!(stated >= 5, "only {stated} row counts stated");
}
