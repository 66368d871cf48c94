//! Network namespaces as hosts: node i runs in namespace `chaos<k>n<i>` with address 198.18.k.(10 + i) on a
//! veth pair joined to a bridge `chbr<k>` (198.18.k.1 on the host side). The bridge has no uplink and the
//! namespaces have no default route, so no packet can leave the machine: 198.18.0.0/15 is the benchmarking
//! range (RFC 2544), never routed. Partitions are kernel rules on the bridge (nftables `bridge` family, hook
//! forward), between real addresses; clients reach the nodes from the host through the bridge.
//!
//! [`NetnsHosts`] owns the bridge and the namespaces: dropping it deletes them. A marker file per subnet
//! (`/run/chaos-netns/<k>`, holding the owner's pid) lets a later run delete what a crashed one left behind.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the markers live.
const MARKER_DIR: &str = "/run/chaos-netns";
/// How many /24 subnets of 198.18.0.0/15 runs may use.
const SUBNETS: u32 = 512;
/// Node i's address ends in `NODE_OFFSET + i`.
const NODE_OFFSET: u64 = 10;

/// Why namespaces cannot be used here (not root, no `ip`), if they cannot.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root".into());
    }
    ip(&["-V"])
        .map(|_| ())
        .map_err(|e| format!("{e} (apt-get install iproute2)"))
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The addresses of subnet `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet(u32);

impl Subnet {
    fn octets(self) -> (u8, u8) {
        (18 + (self.0 / 256) as u8, (self.0 % 256) as u8)
    }

    /// The host's address on the bridge.
    pub fn gateway(self) -> Ipv4Addr {
        let (b, c) = self.octets();
        Ipv4Addr::new(198, b, c, 1)
    }

    /// Node `id`'s address.
    pub fn node_ip(self, id: u64) -> Ipv4Addr {
        let (b, c) = self.octets();
        Ipv4Addr::new(198, b, c, (NODE_OFFSET + id) as u8)
    }

    fn bridge(self) -> String {
        format!("chbr{}", self.0)
    }

    /// Node `id`'s namespace.
    pub fn namespace(self, id: u64) -> String {
        format!("chaos{}n{id}", self.0)
    }

    fn veth(self, id: u64) -> String {
        format!("chv{}n{id}", self.0)
    }

    fn marker(self) -> PathBuf {
        Path::new(MARKER_DIR).join(self.0.to_string())
    }
}

/// The bridge and namespaces of one run; dropping it deletes them.
#[derive(Debug)]
pub struct NetnsHosts {
    subnet: Subnet,
    nodes: Vec<u64>,
    removed: bool,
}

fn owner_alive(marker: &Path) -> bool {
    std::fs::read_to_string(marker)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

impl NetnsHosts {
    /// Makes a bridge and one namespace per node in a free subnet.
    pub fn create(nodes: &[u64]) -> Result<NetnsHosts, String> {
        available()?;
        std::fs::create_dir_all(MARKER_DIR).map_err(|e| format!("{MARKER_DIR}: {e}"))?;
        let start = std::process::id() % SUBNETS;
        for step in 0..SUBNETS {
            let subnet = Subnet((start + step * 7) % SUBNETS);
            let marker = subnet.marker();
            if marker.exists() && owner_alive(&marker) {
                continue;
            }
            // Leftovers of a crashed run: remove before reuse.
            remove_subnet(subnet, crate::plan::nodes_max());
            let claim = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker);
            if claim.is_err() {
                continue; // Another run claimed it just now.
            }
            std::fs::write(&marker, std::process::id().to_string())
                .map_err(|e| format!("{}: {e}", marker.display()))?;
            let mut hosts = NetnsHosts {
                subnet,
                nodes: nodes.to_vec(),
                removed: false,
            };
            hosts.build()?; // On error, drop removes what was built.
            return Ok(hosts);
        }
        Err("no free 198.18.0.0/15 subnet for the namespaces".into())
    }

    fn build(&mut self) -> Result<(), String> {
        let s = self.subnet;
        let bridge = s.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", s.gateway()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for &id in &self.nodes {
            let (ns, veth) = (s.namespace(id), s.veth(id));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", s.node_ip(id)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The subnet in use.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The file that enters node `id`'s namespace (for `setns`).
    pub fn namespace_path(&self, id: u64) -> PathBuf {
        Path::new("/run/netns").join(self.subnet.namespace(id))
    }

    /// Whether a namespace has a default route (it must not: nothing may leave the machine).
    pub fn has_default_route(&self, id: u64) -> Result<bool, String> {
        let routes = ip(&["-n", &self.subnet.namespace(id), "route", "show", "default"])?;
        Ok(!routes.trim().is_empty())
    }

    /// Deletes the namespaces and the bridge.
    pub fn remove(mut self) {
        self.remove_now();
    }

    fn remove_now(&mut self) {
        if !self.removed {
            self.removed = true;
            remove_subnet(self.subnet, self.nodes.len() as u64);
            let _ = std::fs::remove_file(self.subnet.marker());
        }
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Deletes what subnet `k`'s run made (best effort: parts may never have been made).
fn remove_subnet(subnet: Subnet, nodes_max: u64) {
    for id in 1..=nodes_max {
        let _ = ip(&["netns", "delete", &subnet.namespace(id)]);
    }
    let _ = ip(&["link", "delete", &subnet.bridge()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limit_and_addresses_stay_in_the_benchmark_range() {
        for k in [0, 255, 256, SUBNETS - 1] {
            let s = Subnet(k);
            for id in 1..=9 {
                assert!(s.veth(id).len() <= 15 && s.bridge().len() <= 15, "{k} {id}");
                assert!(s.namespace(id).len() <= 15);
                let ip = s.node_ip(id);
                assert!(
                    ip.octets()[0] == 198 && (18..=19).contains(&ip.octets()[1]),
                    "{ip}"
                );
            }
        }
    }
}
