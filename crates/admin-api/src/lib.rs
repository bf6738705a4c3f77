//! The Atlassian Cloud Admin API for orgsql: its client (`api`), an emulator
//! of it (`emulator`) and the escaping of its text for a terminal (`text`).
//! A crate of its own, without DataFusion, so that it compiles while
//! DataFusion does; orgsql re-exports it as `orgsql::{api, emulator, text}`.

pub mod api;
pub mod emulator;
pub mod text;
