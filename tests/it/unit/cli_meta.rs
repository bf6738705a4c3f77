//! Unit tests of `orgsql::cli::meta` (src/cli/meta.rs).

use orgsql::cli::Format;
use orgsql::cli::meta::*;

#[test]
fn every_command_of_the_help_parses_and_every_format_is_accepted() {
    for (name, args, _) in COMMANDS {
        let arg = match *args {
            "" => "",
            "[FORMAT]" => "ndjson",
            "[on|off|auto]" => "auto",
            "[N]" => "100",
            _ => "x",
        };
        assert!(format!("{name} {arg}").parse::<Meta>().is_ok(), "\\{name}");
    }
    use clap::ValueEnum;
    for format in Format::value_variants() {
        let meta = format!("format {}", format_name(*format)).parse::<Meta>();
        assert_eq!(meta, Ok(Meta::Format(Some(*format))));
    }
    assert!("format yaml".parse::<Meta>().is_err());
    assert!("nosuch".parse::<Meta>().is_err());
}
