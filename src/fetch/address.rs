//! Which addresses a download may connect to, enforced where every
//! connection is made: reqwest's DNS resolver. Each connection, redirect and
//! retry resolves through `GuardedResolver`, which returns only addresses
//! outside the special ranges (unless the host is named explicitly in the
//! configuration), and the connection goes to exactly the address that was
//! checked: there is no second lookup to rebind.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Whether an address is one a public image URL has no business reaching:
/// loopback, private, link-local, CGNAT, benchmarking, documentation,
/// multicast, reserved, unique-local, site-local, discard, and IPv6 forms that
/// embed an IPv4 address (mapped, compatible, NAT64, 6to4) judged by it.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// Whether an address is loopback (IPv4-mapped forms included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

fn special_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast 192.88.99.0/24
}

fn special_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return special_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated).
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return special_v4(embedded(s[6], s[7]));
    }
    // NAT64 64:ff9b::/96 carries the IPv4 address it reaches.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return special_v4(embedded(s[6], s[7]));
    }
    // 6to4 2002::/16 carries its IPv4 address in bits 16-48.
    if s[0] == 0x2002 {
        return special_v4(embedded(s[1], s[2]));
    }
    v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local fec0::/10
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments 2001::/23 (Teredo, ORCHID, ...)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard 100::/64
}

/// The resolver every download connection goes through.
#[derive(Debug)]
pub struct GuardedResolver {
    /// Hosts a shortcut or allow-list entry names (`localhost`, say): an
    /// explicit decision to let them resolve to special addresses.
    pub explicit: HashSet<String>,
}

/// A host was refused because of where it resolves.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` resolves to a private or special address; name it explicitly in a shortcut or the allow list")]
pub struct Refused(pub String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let explicit = self.explicit.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !explicit && found.iter().any(|a| is_special(a.ip())) {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(explicit: HashSet<String>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { explicit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "0.0.0.0",
            "240.0.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
            "64:ff9b:1::1",
            "2002:7f00:1::1",    // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1", // 6to4 of 169.254.169.254
            "2001::1",           // Teredo
            "2001:db8::1",
            "100::1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822", // NAT64 of a public address
            "2002:5db8:d822::1",  // 6to4 of a public address
        ] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }
}
