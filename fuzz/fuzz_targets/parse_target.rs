//! Target parsing on arbitrary bytes: never panics, and what parses prints back to itself
//! (an internationalized name prints its ASCII form after it, `bücher.test:80
//! (xn--bcher-kva.test)`, which is left out when it is read back).
#![no_main]

use connect_any::{IntoTarget, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(target) = Target::parse(&input) {
        let printed = target.to_string();
        let written = match target.host() {
            Some(name) => printed.strip_suffix(&format!(" ({name})")),
            None => None,
        };
        let reparsed = Target::parse(written.unwrap_or(&printed));
        assert_eq!(reparsed.as_ref(), Ok(&target), "{input:?} printed as {target}");
    }
    if let Some((port, host)) = data.split_first_chunk::<2>() {
        let host = String::from_utf8_lossy(host);
        let _ = (host.as_ref(), u16::from_le_bytes(*port)).into_target();
    }
});
