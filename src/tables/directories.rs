//! `directories`: the organization's user directories (v2).

use serde::{Deserialize, Serialize};

use super::provider::{Column, Fetch, Origin, Resource, Scan};
use crate::api::PageRequest;

pub struct Directories;

const MAX_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDirectory {
    directory_id: String,
    name: Option<String>,
}

#[derive(Serialize)]
pub struct DirectoryRow {
    org_id: String,
    directory_id: String,
    name: Option<String>,
}

impl Resource for Directories {
    type Data = Vec<ApiDirectory>;
    type Row = DirectoryRow;

    const NAME: &'static str = "directories";
    const DESCRIPTION: &'static str = "User directories of the organization";
    const KEY: &'static [&'static str] = &["directory_id"];

    fn columns() -> Vec<Column> {
        vec![
            Column::org_id(),
            Column::key("directory_id", "Directory id (UUID)"),
            Column::text("name", "Directory name"),
        ]
    }

    fn fetch(scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/v2/orgs/{orgId}/directories")
                .query("limit", scan.page_size(MAX_PAGE).to_string()),
        ]
        .into()
    }

    fn push_rows(origin: &Origin, data: Vec<ApiDirectory>, rows: &mut Vec<DirectoryRow>) {
        rows.extend(data.into_iter().map(|d| DirectoryRow {
            org_id: origin.org_id.to_string(),
            directory_id: d.directory_id,
            name: d.name,
        }));
    }
}
