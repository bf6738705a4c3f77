//! Unit tests of `orgsql::cli::check` (src/cli/check/mod.rs).

use orgsql::cli::check::*;
use std::collections::BTreeMap;

const CONTROL: &str = "-- id: x\n-- title: X\n-- severity: low\n-- rationale: R.\n\
    -- remediation: M.\n-- frameworks: soc2:CC6.1, cis:5.3\n\
    -- param: days integer 90 Days of it\nSELECT '${days}' AS resource";

#[test]
fn a_header_declares_frameworks_and_parameters_the_sql_uses() {
    let control = Control::parse("x.sql", CONTROL).expect("parses");
    assert_eq!(control.frameworks.len(), 2);
    assert_eq!(control.params[0].name, "days");
    let mut values = BTreeMap::new();
    values.insert("days".to_string(), "60".to_string());
    assert!(
        control
            .bound_sql(&values)
            .0
            .ends_with("SELECT '60' AS resource")
    );
    assert!(
        control
            .bound_sql(&BTreeMap::new())
            .0
            .ends_with("'90' AS resource")
    );
    let undeclared = CONTROL.replace("${days}", "${weeks}");
    assert!(Control::parse("x.sql", &undeclared).is_err());
    let unknown = CONTROL.replace("cis:5.3", "pci:1.1");
    assert!(Control::parse("x.sql", &unknown).is_err());
    let controls = vec![control];
    assert!(parameters(&controls, &["days=abc".to_string()]).is_err());
    assert!(parameters(&controls, &["weeks=3".to_string()]).is_err());
    assert!(parameters(&controls, &["days=30".to_string()]).is_ok());
}
