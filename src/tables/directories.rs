//! `directories`: the organization's user directories (v2).

use crate::row;
use serde::Deserialize;

use super::provider::{Fetch, Resource, Scan};
use crate::api::PageRequest;
use super::Label;

pub struct Directories;

const MAX_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDirectory {
    directory_id: String,
    name: Option<String>,
}

row! {
    DirectoryRow(origin, d: ApiDirectory) {
        directory_id: key = d.directory_id, "Directory id (UUID)";
        name: text = d.name, "Directory name";
    }
}

impl Resource for Directories {
    type Data = Vec<ApiDirectory>;
    type Row = DirectoryRow;

    const NAME: &'static str = "directories";
    const DESCRIPTION: &'static str = "User directories of the organization";
    const KEY: &'static [&'static str] = &["directory_id"];
    const LABELS: &'static [Label] = &[Label::own("directory", "name")];

    fn fetch(scan: &Scan) -> Fetch {
        vec![
            PageRequest::get("/admin/v2/orgs/{orgId}/directories")
                .query("limit", scan.page_size(MAX_PAGE).to_string()),
        ]
        .into()
    }
}
