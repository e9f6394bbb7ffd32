//! The race: staggered connection attempts over an ordered address list (RFC 8305 §5).
//!
//! `core` decides (which attempt starts when, who won, when the race is over) without I/O or
//! a clock; `driver` runs it on tokio inside the caller's future, so that nothing outlives
//! it; `pending` holds the addresses not yet started, `running` the attempts' futures, `log`
//! what happened to each, and `attempts` the report a failed connect returns. `simulation`
//! runs the core on a simulated clock against the executable model in `tests/model`.

pub(crate) mod attempts;
pub(crate) mod core;
pub(crate) mod driver;
pub(crate) mod log;
pub(crate) mod pending;
pub(crate) mod running;
#[cfg(test)]
mod simulation;
