//! Why a target could not be parsed.

/// Why a target could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The input, or its host, is empty.
    #[error("empty host")]
    EmptyHost,
    /// The input contains a NUL byte, which would silently cut the name short in C resolvers.
    #[error("NUL byte in target")]
    NulByte,
    /// No `:port` follows the host.
    #[error("missing port")]
    MissingPort,
    /// The port is not a decimal number from 1 to 65535.
    #[error("port is not a number from 1 to 65535")]
    InvalidPort,
    /// A `[` without its `]`, or the other way round.
    #[error("unbalanced brackets")]
    UnbalancedBrackets,
    /// An IPv6 literal followed by a port without brackets, such as `::1:80`.
    #[error("IPv6 address with a port must be in brackets")]
    UnbracketedIpv6,
    /// The text in brackets is not an IPv6 address.
    #[error("invalid IPv6 address")]
    InvalidIpv6,
    /// A host whose last label is numeric but which is not a dotted-quad IPv4 address.
    #[error("invalid IPv4 address")]
    InvalidIpv4,
    /// The `%zone` of an IPv6 literal is neither an interface index nor a known interface.
    #[error("invalid IPv6 zone id")]
    InvalidZone,
    /// A character that may not stand in a host name.
    #[error("invalid character {0:?} in host")]
    InvalidCharacter(char),
    /// A name with non-ASCII characters that UTS 46 (IDNA) cannot convert to ASCII: a
    /// disallowed code point, a label that is not valid Punycode, or a bidi rule broken. Every
    /// non-ASCII name when the crate is built without its `idn` feature.
    #[error("invalid internationalized domain name")]
    InvalidIdn,
    /// Two dots in a row, or a leading dot.
    #[error("empty label in host name")]
    EmptyLabel,
    /// A label starts or ends with a hyphen.
    #[error("label starts or ends with a hyphen")]
    HyphenAtLabelEdge,
    /// A label longer than 63 bytes.
    #[error("host name label longer than 63 bytes")]
    LabelTooLong,
    /// A name longer than 253 bytes.
    #[error("host name longer than 253 bytes")]
    NameTooLong,
    /// A URI with neither a port nor a scheme whose default port is known (`http`, `https`,
    /// `ws`, `wss`).
    #[error("URI has no port and no scheme with a default port")]
    UnknownScheme,
    /// A [`HyperConnector`](crate::HyperConnector) that enforces plain HTTP was given a URI
    /// whose scheme is not `http` or `ws` (such as `https`): it would have sent it in clear
    /// text. A TLS connector wrapping it needs `enforce_http(false)`.
    #[error("scheme is not http or ws (a TLS connector must wrap this one)")]
    SchemeNotHttp,
}
