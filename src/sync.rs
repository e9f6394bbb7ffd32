//! Locking the crate's shared tables.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not: every update of the crate's tables is one call that leaves
/// them consistent, so a holder that panicked left them usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
