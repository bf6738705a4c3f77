//! Unit tests of `orgsql::storage` (src/storage.rs).

use datafusion::error::Result;
use orgsql::storage::Location;

fn parsed(text: &str) -> Result<Location, String> {
    text.parse::<Location>().map_err(|e| e.to_string())
}

#[test]
fn a_location_is_a_folder_or_a_bucket_prefix_decided_once() {
    assert_eq!(parsed("snap/"), Ok(Location::Folder("snap/".into())));
    assert_eq!(
        parsed("file:///tmp/snap"),
        Ok(Location::Folder("/tmp/snap".into()))
    );
    for text in ["s3://audit/atlassian", "s3://audit/atlassian/"] {
        let Ok(Location::Bucket(url)) = parsed(text) else {
            panic!("{text}: not a bucket");
        };
        assert_eq!(url.as_str(), "s3://audit/atlassian/");
    }
    let bucket = parsed("gs://audit/x").expect("gs");
    assert_eq!(bucket.to_string(), "gs://audit/x");
    assert_eq!(bucket.file("manifest.json"), "gs://audit/x/manifest.json");
    assert_eq!(
        bucket.join("org_id=1").file("manifest.json"),
        "gs://audit/x/org_id=1/manifest.json"
    );
    let folder = parsed("snap").expect("folder");
    assert_eq!(
        folder.join("org_id=1").file("events/a.parquet"),
        std::path::Path::new("snap/org_id=1/events/a.parquet")
            .display()
            .to_string()
    );
}

#[test]
fn a_location_that_is_neither_is_refused_with_what_to_do() {
    let typo = parsed("s3:/audit/x").expect_err("typo");
    assert!(typo.contains("did you mean s3://"), "{typo}");
    let http = parsed("https://example.com/x").expect_err("http");
    assert!(http.contains("reads and writes https:// nowhere"), "{http}");
    let no_bucket = parsed("s3:///x").expect_err("no bucket");
    assert!(no_bucket.contains("names no bucket"), "{no_bucket}");
    let relative = parsed("file://snap").expect_err("relative file URL");
    assert!(relative.contains("absolute path"), "{relative}");
}
