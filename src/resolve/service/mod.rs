//! Service records (RFC 9460, Happy Eyeballs v3 §4-§6): the HTTPS records of a target reached
//! as a service, which endpoints they make, and what each attempt's dialer is told of them.

pub(crate) mod endpoint;
pub(crate) mod plan;
pub(crate) mod record;

/// A DNS name compared as DNS does: without case or a trailing dot.
pub(crate) fn normalized(name: &str) -> Box<str> {
    name.strip_suffix('.')
        .unwrap_or(name)
        .to_ascii_lowercase()
        .into()
}

/// The name a target's HTTPS records are asked for at (RFC 9460 §9.1): the host itself for
/// port 443, `_PORT._https.HOST` for any other.
#[cfg_attr(not(feature = "hickory"), allow(dead_code))]
pub(crate) fn https_query_name(host: &str, port: u16) -> String {
    match port {
        443 => host.to_owned(),
        other => format!("_{other}._https.{host}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_port_other_than_443_is_asked_for_under_its_prefix() {
        assert_eq!(super::https_query_name("example.com", 443), "example.com");
        assert_eq!(
            super::https_query_name("example.com", 8443),
            "_8443._https.example.com"
        );
    }
}
