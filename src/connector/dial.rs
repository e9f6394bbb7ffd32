//! What dials one attempt: a closure of an address, or one of an [`Endpoint`] that reads the
//! service connect's table of endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::resolve::service::endpoint::{Endpoint, Endpoints};

/// Dials one address, yielding `Fut`.
pub(crate) trait Dial<Fut> {
    /// Starts the attempt to `addr`.
    fn dial(&mut self, addr: SocketAddr) -> Fut;

    /// The table a service connect writes its endpoints to, if this dialer reads one.
    fn endpoints(&self) -> Option<&Arc<Endpoints>> {
        None
    }
}

impl<F, Fut> Dial<Fut> for F
where
    F: FnMut(SocketAddr) -> Fut,
{
    #[inline(always)]
    fn dial(&mut self, addr: SocketAddr) -> Fut {
        self(addr)
    }
}

/// A dialer of endpoints: each attempt is handed what the table says of its address.
pub(crate) struct ByEndpoint<D> {
    pub(crate) dial: D,
    pub(crate) endpoints: Arc<Endpoints>,
}

impl<D, Fut> Dial<Fut> for ByEndpoint<D>
where
    D: FnMut(Endpoint) -> Fut,
{
    fn dial(&mut self, addr: SocketAddr) -> Fut {
        (self.dial)(self.endpoints.endpoint(addr))
    }

    fn endpoints(&self) -> Option<&Arc<Endpoints>> {
        Some(&self.endpoints)
    }
}
