//! The crate's shared tables: locking them, and keys hashed once.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Locks `mutex`, poisoned or not: every update of the crate's tables is one call that leaves
/// them consistent, so a holder that panicked left them usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `value`'s hash under the process's random SipHash keys: computed once per connect and
/// carried by a key, so that each table the key is looked up in hashes one `u64`, while the
/// keys stay as hard to collide on purpose as the standard library's.
pub(crate) fn hash_once(value: impl Hash) -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new).hash_one(value)
}

/// Hashes a key that carries its own [`hash_once`] hash, or half of it, writing it with
/// `write_u64` or `write_u32`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = CarriedHash;

    fn build_hasher(&self) -> CarriedHash {
        CarriedHash(0)
    }
}

/// The hash a key wrote; any other bytes are folded in (FNV-1a), so that a key that wrote
/// more than its hash is still hashed by all of it.
#[derive(Debug)]
pub(crate) struct CarriedHash(u64);

impl Hasher for CarriedHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 ^= hash;
    }

    /// Spread over all 64 bits (Fibonacci hashing): the table reads its buckets from the low
    /// bits and its tags from the high ones.
    fn write_u32(&mut self, hash: u32) {
        self.0 ^= u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carried_hash_is_the_key_hash_and_equal_values_hash_alike() {
        assert_eq!(hash_once(("a.test", 80)), hash_once(("a.test", 80)));
        assert_ne!(hash_once(("a.test", 80)), hash_once(("a.test", 81)));
        let carried = Prehashed.hash_one(0x1234_5678_u64);
        assert_eq!(carried, 0x1234_5678);
        assert_ne!(Prehashed.hash_one("a"), Prehashed.hash_one("b"));
        assert!(
            Prehashed.hash_one(1_u32) >> 57 != 0,
            "the high bits are used"
        );
    }
}
