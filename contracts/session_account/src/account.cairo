pub mod session_account;
