pub mod owner;
pub mod session_key;
pub mod spending_policy;
