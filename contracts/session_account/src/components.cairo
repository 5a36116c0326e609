pub mod outside_execution;
pub mod owner;
pub mod session_key;
pub mod spending_policy;
