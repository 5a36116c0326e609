//! The `chipi` command line: a one-command demo of the whole system (`chipi demo`), the
//! local stack for trying it (`chipi dev`). The binary is a thin shell over this library,
//! so the tests run the same code.
#![deny(missing_docs)]

pub mod demo;
pub mod dev;
mod narrator;

pub use narrator::Narrator;
