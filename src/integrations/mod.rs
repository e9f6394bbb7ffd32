//! The connector inside other libraries' clients: hyper-util (feature `hyper`) and reqwest
//! (feature `reqwest`).

#[cfg(feature = "hyper")]
pub(crate) mod hyper;
#[cfg(feature = "hyper")]
pub(crate) mod hyper_resolver;
#[cfg(feature = "reqwest")]
pub(crate) mod reqwest;
