//! The `chipi` command line: a one-command demo of the whole system (`chipi demo`), the
//! local stack for trying it (`chipi dev`), and the wallet, session and policy commands
//! for real use. The binary is a thin shell over this library, so the tests run the
//! same code.
#![deny(missing_docs)]

pub mod commands;
pub mod demo;
pub mod dev;
pub mod exit;
mod files;
mod narrator;
mod pin;

pub use narrator::Narrator;
