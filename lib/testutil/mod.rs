//! What the unit tests share (compiled for tests only): a deterministic
//! random generator and scratch directories. The integration tests' helpers
//! are in tests/common.

pub mod rand;
pub mod scratch;
