//! What a service connect's dialer is handed for each attempt, and the table that maps each
//! address raced to the record it came from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::resolve::service::record::{Service, ServiceRecord};

/// One address to dial, with what the HTTPS record it came from says about it: the
/// application protocols to offer, the ECH configuration, the name the record pointed at.
///
/// A dialer given to [`Connector::connect_endpoints_with`](crate::Connector::connect_endpoints_with)
/// receives one per attempt. An address that came from no record (the target's own A and AAAA
/// answers, or any answer without HTTPS records) has no record: the dialer then does what it
/// would do without them.
#[derive(Clone, Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    record: Option<Arc<ServiceRecord>>,
    service: Service,
}

impl Endpoint {
    /// The address to dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The record the address came from, if it came from one.
    pub fn record(&self) -> Option<&ServiceRecord> {
        self.record.as_deref()
    }

    /// The ALPN ids to offer, in the record's order: its ALPN set (`alpn`, and `http/1.1`
    /// unless `no-default-alpn`), less what the caller does not speak
    /// ([`Service::protocols`](crate::Service::protocols)). Empty without a record.
    pub fn alpn(&self) -> Vec<&[u8]> {
        let Some(record) = &self.record else {
            return Vec::new();
        };
        let speaks = |p: &&[u8]| self.service.speaks(p);
        record.alpn_set().filter(speaks).collect()
    }

    /// The record's ECHConfigList, unread, for the TLS layer.
    pub fn ech_config_list(&self) -> Option<&[u8]> {
        self.record
            .as_ref()
            .and_then(|record| record.ech_config_list())
    }

    /// The record's TargetName (`"."`: the name the record is at).
    pub fn target_name(&self) -> Option<&str> {
        self.record.as_ref().map(|record| record.target_name())
    }
}

/// Where in the order an address without a record goes: after every record's.
pub(crate) const UNRECORDED: u32 = u32::MAX;

/// The record behind each address of one service connect, and its rank (the record's
/// priority): shared by the wait for answers, which writes it, the race, which orders by it,
/// and the dialer, which reads it.
#[derive(Debug)]
pub(crate) struct Endpoints {
    slots: Mutex<HashMap<SocketAddr, Slot>>,
    service: Service,
}

#[derive(Debug, Clone)]
struct Slot {
    rank: u32,
    record: Option<Arc<ServiceRecord>>,
}

impl Endpoints {
    pub(crate) fn new(service: Service) -> Arc<Self> {
        Arc::new(Self {
            slots: Mutex::default(),
            service,
        })
    }

    /// Notes that `addr` comes from `record` (`None`: from no record).
    pub(crate) fn set(&self, addr: SocketAddr, record: Option<&Arc<ServiceRecord>>) {
        let rank = record.map_or(UNRECORDED, |r| u32::from(r.priority()));
        let slot = Slot {
            rank,
            record: record.cloned(),
        };
        self.lock().insert(addr, slot);
    }

    /// The rank `addr` is dialed at: lower first.
    pub(crate) fn rank(&self, addr: &SocketAddr) -> u32 {
        self.lock().get(addr).map_or(UNRECORDED, |slot| slot.rank)
    }

    /// The record `addr` came from, if any.
    pub(crate) fn record(&self, addr: SocketAddr) -> Option<Arc<ServiceRecord>> {
        self.lock().get(&addr).and_then(|slot| slot.record.clone())
    }

    /// What the dialer is handed for `addr`.
    pub(crate) fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        let record = self.record(addr);
        Endpoint {
            addr,
            record,
            service: self.service.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
