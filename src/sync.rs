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

/// `value`'s hash, keyed by the process's random keys: computed once per connect and carried
/// by a key, so that each table the key is looked up in hashes one number.
pub(crate) fn hash_once(value: impl Hash) -> u64 {
    Keyed.hash_one(value)
}

/// Builds [`KeyedHasher`]s with the process's random keys: for the crate's sets of addresses,
/// which SipHash (the standard library's default) made cost about 300 instructions an address.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Keyed;

impl BuildHasher for Keyed {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
        let &(seed, multiplier) = KEYS.get_or_init(|| {
            let random = RandomState::new();
            (random.hash_one(0_u8), random.hash_one(1_u8) | 1)
        });
        KeyedHasher {
            state: seed,
            multiplier,
        }
    }
}

/// Folds each eight bytes into its state with a 128-bit multiply by a random key (the scheme
/// of wyhash and foldhash): which keys collide depends on keys an attacker cannot see, as
/// with SipHash, for a fraction of SipHash's cost on a short name (SipHash's buffering made
/// about 300 instructions of a name and port).
pub(crate) struct KeyedHasher {
    state: u64,
    multiplier: u64,
}

impl KeyedHasher {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(self.multiplier);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut eight = [0; 8];
            eight.copy_from_slice(word);
            self.mix(u64::from_le_bytes(eight));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // The length goes into the top byte, so that trailing zeros are not lost.
            let mut eight = [0; 8];
            eight[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(eight) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.mix(word);
    }

    // A value of a fixed width is one word: the hash of one type is never compared with
    // another's, so the width needs no marking.
    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u16(&mut self, value: u16) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.state) * u128::from(self.multiplier.rotate_left(29));
        (product as u64) ^ ((product >> 64) as u64)
    }
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

    /// Ten thousand names and ports of one pattern: no two share a hash, and the halves that
    /// keys carry spread over the table's buckets.
    #[test]
    fn keyed_hashes_of_similar_names_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        let mut low_bits = std::collections::HashSet::new();
        for n in 0..10_000 {
            let name = format!("host-{n}.test");
            let hash = hash_once((name.as_str(), 443_u16));
            assert!(seen.insert(hash), "{name} collides");
            low_bits.insert(Prehashed.hash_one(hash as u32) & 0xfff);
        }
        assert!(hash_once(("a", 1_u16)) != hash_once(("a", 2_u16)));
        assert!(hash_once(("a\0", 1_u16)) != hash_once(("a", 1_u16)));
        assert!(
            low_bits.len() > 3_500,
            "{} of 4,096 buckets",
            low_bits.len()
        );
    }

    /// Addresses that differ in one port or one byte of the address: no two share a hash.
    #[test]
    fn keyed_hashes_of_similar_addresses_do_not_collide() {
        use std::net::SocketAddr;
        let mut seen = std::collections::HashSet::new();
        for n in 0..5_000_u16 {
            let [high, low] = n.to_be_bytes();
            let addrs = [
                SocketAddr::from(([127, 0, high, low], 443)),
                SocketAddr::from(([127, 0, 0, 1], n)),
                SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, n], 443)),
                SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], n)),
            ];
            for addr in addrs {
                seen.insert(addr);
                assert_eq!(Keyed.hash_one(addr), Keyed.hash_one(addr));
            }
        }
        let hashes: std::collections::HashSet<u64> =
            seen.iter().map(|a| Keyed.hash_one(a)).collect();
        assert_eq!(hashes.len(), seen.len(), "some addresses collide");
    }

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
