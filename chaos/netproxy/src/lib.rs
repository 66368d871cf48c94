//! Userspace UDP relays that put network faults on the links between cluster nodes, without root.
//!
//! The kernel here has no `tc netem`, so the chaos runner puts a [`Relay`] on every directed node-to-node
//! link: node `i` is told that node `j` lives at the relay R(i,j), which forwards to `j`'s real address. The
//! nodes see only a network; the runner cuts or degrades any link by changing the shared [`FaultTable`].
//!
//! - **NAT per source.** Each downstream source address gets its own upstream socket, so replies find their
//!   way back and several sources (clients) can share one relay.
//! - **Faults per directed link, not per relay.** A relay knows the [`Endpoint`] on each side; packets from
//!   downstream travel `downstream → upstream`, replies travel back. Node `i`'s packets to `j` cross R(i,j)
//!   (its own connection) and R(j,i) (its replies on `j`'s connection): a fault on `i → j` hits both.
//! - **Fault vocabulary** ([`LinkFault`]): partition, loss, delay plus uniform jitter (first-in first-out),
//!   reordering (hold some packets back so later ones overtake them), duplication, and a token-bucket rate
//!   limit with a bounded queue; all changeable while packets flow.
//! - **Pure core.** [`Decider::decide`] turns (fault, seeded RNG, time, size) into a [`Decision`]; the relays
//!   are the IO shell around it. Every random choice comes from the mesh's seed.
//! - **Bounded.** Sources per relay, held packets and bytes per direction, rate-limiter queues, datagram size.
//! - **Counters** ([`LinkCounters`]) per directed link, summed over the relays carrying it.
//!
//! The library spawns its tasks on the caller's tokio runtime and never creates one.
//!
//! # The runner's loop
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use netproxy::{LinkFault, MeshConfig, NodeId, RateLimit, RelayConfig, RelayMesh};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seed = 42; // printed at the start of the run and stored with it
//! let nodes: [(NodeId, SocketAddr); 3] = [
//!     (NodeId(1), "127.0.0.1:7001".parse()?),
//!     (NodeId(2), "127.0.0.1:7002".parse()?),
//!     (NodeId(3), "127.0.0.1:7003".parse()?),
//! ];
//! let config = MeshConfig { relay: RelayConfig { seed, ..RelayConfig::default() }, ..MeshConfig::default() };
//! let mesh = RelayMesh::start(&nodes, config)?;
//! // Node 1 is configured to reach its peers at these addresses instead of their real ones.
//! let peers_of_1 = mesh.peer_addrs(1);
//! assert_eq!(peers_of_1[&NodeId(2)], mesh.addr_for(1, 2).unwrap());
//!
//! // The nemesis changes faults while the nodes run.
//! let faults = mesh.faults();
//! faults.set(1, 2, LinkFault::none()
//!     .with_delay(Duration::from_millis(20), Duration::from_millis(5))
//!     .with_loss(0.01)
//!     .with_rate(RateLimit::per_second(1 << 20)))?;
//! faults.partition_oneway(3, 1); // 3 cannot reach 1; 1 still reaches 3
//! mesh.isolate(2); // 2 reaches no one, no one reaches 2
//! faults.clear_all(); // heal
//!
//! // The report reads the counters of every link.
//! for (link, counters) in mesh.counters() {
//!     println!("{link}: {} in, {} forwarded, {} dropped", counters.packets_in,
//!              counters.forwarded, counters.dropped.total());
//! }
//! mesh.shutdown().await; // every relay socket is closed on return
//! # Ok(())
//! # }
//! ```

mod decide;
mod endpoint;
mod fault;
mod mesh;
mod relay;
mod table;

pub use decide::{derive_seed, Decider, Decision, DropCause, Shaper};
pub use endpoint::{ClientId, Endpoint, Link, NodeId};
pub use fault::{
    FaultError, LinkFault, RateLimit, HOLD_MAX, RATE_QUEUE_BYTES_MAX, REORDER_HOLD_DEFAULT,
};
pub use mesh::{MeshConfig, RelayMesh};
pub use relay::{Relay, RelayConfig, RelayError, RelaySpec, RelayStats, DATAGRAM_BYTES_MAX};
pub use table::{DropCounters, FaultTable, LinkCounters};
