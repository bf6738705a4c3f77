//! The Admin API's page envelope and its several ways of saying "next page":
//! `meta.next` (bare cursor: events, policies), `links.next` as a bare cursor
//! (v2 lists and searches) or as a full URL with a `cursor` parameter (v1 lists).

use serde::Deserialize;

/// One page: the resource's `data` plus the paging markers we read.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
    #[serde(default)]
    pub links: Option<Links>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub next: Option<String>,
}

/// How many items a page's `data` holds, for the request log.
pub trait PageItems {
    fn item_count(&self) -> usize;
}

impl<T> PageItems for Vec<T> {
    fn item_count(&self) -> usize {
        self.len()
    }
}

impl PageItems for serde_json::Value {
    fn item_count(&self) -> usize {
        self.as_array().map_or(1, Vec::len)
    }
}

/// The cursor for the next page, or `None` on the last page (`next` missing,
/// null or empty, `links: {}`). A URL yields its `cursor` query parameter.
pub fn next_cursor<T>(page: &Envelope<T>) -> Result<Option<String>, String> {
    let meta = page.meta.as_ref().and_then(|m| m.next.as_deref());
    let links = page.links.as_ref().and_then(|l| l.next.as_deref());
    let Some(next) = meta.or(links).map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if !(next.starts_with("http://") || next.starts_with("https://")) {
        return Ok(Some(next.to_string()));
    }
    let url = reqwest::Url::parse(next)
        .map_err(|e| format!("next-page link {next:?} is not a URL: {e}"))?;
    url.query_pairs()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| Some(v.into_owned()))
        .ok_or_else(|| format!("next-page link {next:?} has no cursor parameter"))
}
