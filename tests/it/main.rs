//! The integration tests, one binary (each test binary links DataFusion):
//! the emulator on loopback, the library, and the real `orgsql` binary.

// A test's failure is its report: helpers unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod apply;
mod azure;
mod bucket_writers;
mod budgets;
mod careless;
mod check;
mod cli;
mod completeness;
mod credentials;
mod delivery;
mod demo;
mod diff;
mod differential;
mod emulator_writes;
mod export;
mod fanout;
mod fixtures;
mod fuzz;
mod history;
mod hostile;
mod identities;
mod layout;
mod leak;
mod orgs;
mod pushdown;
mod readme;
mod repl;
mod review;
mod s3server;
mod scim;
mod seats;
mod slt;
mod snapshot;
mod spec;
mod storage;
mod tables;
mod trust;
mod unit;
mod verify;
mod watch;
