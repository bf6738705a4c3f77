//! The library's unit tests, a file per module, through its `pub` items.
//! They live here, not in the library (`[lib] test = false`), so that
//! `cargo test` compiles the library once, not a second time in test mode.
//! The same for the Admin API crate (crates/admin-api): `api_*` test it
//! through orgsql's re-export, `orgsql::api`.

mod api_cache;
mod api_client;
mod api_error;
mod api_listings;
mod api_pacer;
mod api_paging;
mod api_retry;
mod cli_check;
mod cli_check_envelope;
mod cli_check_json;
mod cli_meta;
mod cli_output;
mod cli_progress;
mod cli_watch_deliver;
mod cli_watch_recent;
mod cli_watch_state;
mod clock;
mod config;
mod history;
mod snapshot;
mod sql;
mod storage;
mod tables_filters;
mod tables_provider;
