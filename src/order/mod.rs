//! Ordering: what of the answers may be dialed (de-duplication, the family filter, the address
//! policy) and in which order (families interleaved, late answers merged, a remembered winner
//! first).

pub(crate) mod admission;
pub(crate) mod interleave;
pub(crate) mod policy;
