//! `server.trusted_proxies` entries: one address or a CIDR block, as
//! operators write them (a load balancer's address, a Kubernetes ingress
//! controller's pod range).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressRange(IpNet);

impl AddressRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees an IPv4 peer as ::ffff:a.b.c.d.
        self.0.contains(&ip.to_canonical())
    }
}

/// Whether `ip` is in any of `ranges`.
pub fn any_contains(ranges: &[AddressRange], ip: IpAddr) -> bool {
    ranges.iter().any(|r| r.contains(ip))
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let net = if text.contains('/') {
            // Host bits are dropped: 10.1.2.3/8 means 10.0.0.0/8.
            text.parse::<IpNet>().map(|n| n.trunc()).ok()
        } else {
            text.parse::<IpAddr>().map(IpNet::from).ok()
        };
        net.map(AddressRange).ok_or_else(|| {
            format!("{text:?} is neither an IP address nor a CIDR block like 10.0.0.0/8")
        })
    }
}

impl TryFrom<String> for AddressRange {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<AddressRange> for String {
    fn from(range: AddressRange) -> String {
        range.to_string()
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> AddressRange {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_single_address_holds_only_itself() {
        let one = range("10.0.0.1");
        assert!(one.contains(ip("10.0.0.1")));
        assert!(!one.contains(ip("10.0.0.2")));
        assert_eq!(one.to_string(), "10.0.0.1");
    }

    #[test]
    fn a_block_holds_its_addresses_and_no_others() {
        let block = range("10.42.0.0/16");
        assert!(block.contains(ip("10.42.0.1")));
        assert!(block.contains(ip("10.42.255.254")));
        assert!(!block.contains(ip("10.43.0.1")));
        assert!(!block.contains(ip("203.0.113.9")));
        let v6 = range("fd00:abcd::/32");
        assert!(v6.contains(ip("fd00:abcd::17")));
        assert!(!v6.contains(ip("fd00:abce::17")));
        assert!(!v6.contains(ip("10.42.0.1")));
    }

    #[test]
    fn host_bits_are_dropped_and_mapped_ipv4_peers_match() {
        assert_eq!(range("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert!(range("10.0.0.0/8").contains(ip("::ffff:10.9.8.7")));
        assert!(!range("10.0.0.0/8").contains(ip("::ffff:11.9.8.7")));
    }

    #[test]
    fn anything_else_is_refused_with_a_message() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "example.com",
            "10.0.0.0/8/1",
            "*",
        ] {
            let error = bad.parse::<AddressRange>().unwrap_err();
            assert!(error.contains("CIDR"), "{bad}: {error}");
        }
    }
}
