//! Where callbacks may go. Caller-supplied URLs must not reach into our network: private,
//! loopback, link-local (the instance metadata service at 169.254.169.254 among them), CGNAT,
//! multicast and reserved addresses are refused unless a configured CIDR allows them (the tests
//! and the local runner allow loopback). The check runs on the addresses the connection will
//! actually use (inside the resolver), so a name cannot pass the check and then resolve elsewhere.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Networks allowed even though they are not public.
    allowed: Vec<(IpAddr, u8)>,
}

impl OutboundPolicy {
    /// Public addresses only.
    pub fn public_only() -> Self {
        OutboundPolicy::default()
    }

    /// Public addresses and loopback (local development and tests).
    pub fn loopback_allowed() -> Self {
        Self::with_allowed("127.0.0.0/8,::1/128").expect("valid CIDRs")
    }

    /// Public addresses and the comma-separated CIDRs given (`10.0.0.0/8,::1/128`).
    pub fn with_allowed(cidrs: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for cidr in cidrs.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (ip, bits) = cidr.split_once('/').unwrap_or((cidr, ""));
            let ip: IpAddr = ip.parse().map_err(|_| format!("{cidr:?} is not a CIDR"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = if bits.is_empty() {
                max
            } else {
                bits.parse().map_err(|_| format!("{cidr:?} is not a CIDR"))?
            };
            if bits > max {
                return Err(format!("{cidr:?}: prefix longer than {max}"));
            }
            allowed.push((ip, bits));
        }
        Ok(OutboundPolicy { allowed })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// IPv4-mapped and NAT64 IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits as u32) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits as u32) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
                || v6 == Ipv6Addr::UNSPECIFIED
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Where names are looked up: the system resolver, or a fixed table (tests: a name that
/// resolves to an internal address, as an attacker's DNS would answer).
#[derive(Clone)]
enum Lookup {
    System(GaiResolver),
    Table(std::sync::Arc<std::collections::HashMap<String, Vec<IpAddr>>>),
}

/// The resolver, keeping only the addresses the policy permits: a name that resolves to an
/// internal address is refused as an internal IP literal is.
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Lookup,
    policy: OutboundPolicy,
}

impl GuardedResolver {
    pub fn new(policy: OutboundPolicy) -> Self {
        GuardedResolver { lookup: Lookup::System(GaiResolver::new()), policy }
    }

    /// Names resolved from `hosts` instead of the system (for tests).
    pub fn with_hosts(policy: OutboundPolicy, hosts: std::collections::HashMap<String, Vec<IpAddr>>) -> Self {
        GuardedResolver { lookup: Lookup::Table(std::sync::Arc::new(hosts)), policy }
    }
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.lookup {
            Lookup::System(inner) => inner.poll_ready(cx),
            Lookup::Table(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        let resolving: Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> =
            match &mut self.lookup {
                Lookup::System(inner) => {
                    let resolving = inner.call(name.clone());
                    Box::pin(async move { Ok(resolving.await?.collect()) })
                }
                Lookup::Table(table) => {
                    let found = table.get(name.as_str()).cloned().unwrap_or_default();
                    Box::pin(async move { Ok(found.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()) })
                }
            };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                resolving.await?.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} resolves to no address callbacks may reach", name.as_str()),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_addresses_unless_allowed() {
        let public = OutboundPolicy::public_only();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            assert!(!public.permits(internal.parse().unwrap()), "{internal}");
        }
        for external in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(public.permits(external.parse().unwrap()), "{external}");
        }
        let local = OutboundPolicy::loopback_allowed();
        assert!(local.permits("127.0.0.1".parse().unwrap()));
        assert!(local.permits("::1".parse().unwrap()));
        assert!(!local.permits("169.254.169.254".parse().unwrap()), "metadata stays refused");
        assert!(!local.permits("10.0.0.1".parse().unwrap()));
        let ten = OutboundPolicy::with_allowed("10.0.0.0/8").unwrap();
        assert!(ten.permits("10.200.0.1".parse().unwrap()));
        assert!(!ten.permits("192.168.0.1".parse().unwrap()));
        assert!(OutboundPolicy::with_allowed("10.0.0.0/33").is_err());
        assert!(OutboundPolicy::with_allowed("nope").is_err());
    }
}
