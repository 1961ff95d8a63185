//! Parsing of time bounds (`--since`, `--after`, `--before`) and strict message ids (`-m`).
//!
//! CONTRACT (to be implemented; see shared/spec/simplebroker-reference.md §5):
//!
//! pub fn parse_time_bound(text: &str) -> Result<i64, TimeBoundError>
//! pub fn parse_message_id(text: &str) -> Option<i64>
//! pub enum TimeBoundError  (thiserror; Display starts with "Invalid timestamp")
