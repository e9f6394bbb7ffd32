//! Target parsing on arbitrary bytes: never panics, and what parses prints back to itself.
#![no_main]

use connect_any::{IntoTarget, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(target) = Target::parse(&input) {
        let reparsed = Target::parse(&target.to_string());
        assert_eq!(reparsed.as_ref(), Ok(&target), "{input:?} printed as {target}");
    }
    if let Some((port, host)) = data.split_first_chunk::<2>() {
        let host = String::from_utf8_lossy(host);
        let _ = (host.as_ref(), u16::from_le_bytes(*port)).into_target();
    }
});
