//! Durations printed for people: `301 ms`, not `301.013717ms`.

use std::fmt;
use std::time::Duration;

/// A duration at the precision a person reads: whole microseconds below 1 ms, whole
/// milliseconds below 1 s, seconds to two decimals (trailing zeros dropped) above.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_millis(1) {
            return write!(f, "{} µs", d.as_micros());
        }
        if d < Duration::from_secs(1) {
            return write!(f, "{} ms", d.as_millis());
        }
        let hundredths = d.as_millis() / 10;
        let (whole, part) = (hundredths / 100, hundredths % 100);
        match part {
            0 => write!(f, "{whole} s"),
            p if p % 10 == 0 => write!(f, "{whole}.{} s", p / 10),
            p => write!(f, "{whole}.{p:02} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (Duration::ZERO, "0 µs"),
            (Duration::from_nanos(39_109), "39 µs"),
            (Duration::from_micros(301_013), "301 ms"),
            (Duration::from_secs(1), "1 s"),
            (Duration::from_millis(1500), "1.5 s"),
            (Duration::from_millis(1257), "1.25 s"),
            (Duration::from_millis(10_050), "10.05 s"),
            (Duration::MAX, "18446744073709551615.99 s"),
        ];
        for (duration, printed) in cases {
            assert_eq!(Human(duration).to_string(), printed, "{duration:?}");
        }
    }
}
