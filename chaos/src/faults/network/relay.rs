//! The relay backend: node i reaches node j through its own UDP relay R(i, j) (`chaos/netproxy`), so any
//! directed link can be cut or degraded without privileges.

use super::{LinkDegradation, NetworkBackend};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The relay's fault for one link.
pub fn link_fault(d: &LinkDegradation) -> netproxy::LinkFault {
    netproxy::LinkFault {
        drop_all: d.cut,
        loss: d.loss,
        delay: d.delay,
        jitter: d.jitter,
        duplicate: d.duplicate,
        reorder: d.reorder,
        reorder_delay: if d.reorder > 0.0 {
            netproxy::REORDER_HOLD_DEFAULT
        } else {
            Duration::ZERO
        },
        rate: d
            .rate_limit_bytes_per_s
            .map(netproxy::RateLimit::per_second),
    }
}

/// Network faults through the relay mesh's fault table.
#[derive(Debug)]
pub struct RelayNetwork {
    table: Arc<netproxy::FaultTable>,
}

impl RelayNetwork {
    /// Faults through `table`.
    pub fn new(table: Arc<netproxy::FaultTable>) -> RelayNetwork {
        RelayNetwork { table }
    }
}

impl NetworkBackend for RelayNetwork {
    fn apply(&mut self, links: &BTreeMap<(u64, u64), LinkDegradation>) -> Result<(), String> {
        self.table.clear_all();
        for (&(from, to), d) in links {
            self.table
                .set(from, to, link_fault(d))
                .map_err(|e| format!("the relay refused the fault on link n{from}->n{to}: {e}"))?;
        }
        Ok(())
    }
}
