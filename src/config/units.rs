//! Human units in configuration: byte sizes (`512MiB`, `20GB`, `1048576`) and
//! durations (`30s`, `250ms`, `2m`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A number of bytes, written in config as a plain integer or with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * 1024)
    }

    pub const fn mib(n: u64) -> Self {
        ByteSize(n * 1024 * 1024)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size (examples: 1048576, 64KiB, 512MiB, 20GiB)"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            "t" | "tb" => 1000u64.pow(4),
            "tib" => 1 << 40,
            other => return Err(format!("unknown size unit `{other}` in `{text}`")),
        };
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("size `{text}` is out of range"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, size) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{}", self.0 / size, name);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written as `30s`, `250ms`, `2m`, `1h 30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map(HumanDuration).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a duration ({e}); examples: 30s, 250ms, 2m"))
        })
    }
}

/// A listen address as people write it: `127.0.0.1:3000`, `[::1]:3000`,
/// `:3000` (every interface) or `localhost:3000` (loopback).
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("`{text}`: `{p}` is not a port (0 to 65535)"))
    };
    if let Some(p) = text.strip_prefix(':') {
        return Ok(std::net::SocketAddr::from(([0, 0, 0, 0], port(p)?)));
    }
    if let Some(p) = text.to_ascii_lowercase().strip_prefix("localhost:") {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port(p)?)));
    }
    Err(format!(
        "`{text}` is not a listen address; examples: 127.0.0.1:3000, 0.0.0.0:3000, [::1]:3000, :3000, localhost:3000"
    ))
}

pub fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::SocketAddr, D::Error> {
    parse_listen(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

pub fn optional_listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::net::SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|t| parse_listen(&t))
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_as_people_write_them() {
        assert_eq!(parse_listen(":3000").unwrap().to_string(), "0.0.0.0:3000");
        assert_eq!(parse_listen("localhost:8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(parse_listen("[::1]:3000").unwrap().to_string(), "[::1]:3000");
        assert!(parse_listen("localhost:http").unwrap_err().contains("not a port"));
        assert!(parse_listen("example.com:80").unwrap_err().contains("examples"));
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("512MiB").unwrap(), ByteSize(512 << 20));
        assert_eq!(ByteSize::parse("20GiB").unwrap(), ByteSize(20 << 30));
        assert_eq!(ByteSize::parse("1.5 KiB").unwrap(), ByteSize(1536));
        assert_eq!(ByteSize::parse("10MB").unwrap(), ByteSize(10_000_000));
        assert_eq!(ByteSize::parse("4096").unwrap(), ByteSize(4096));
    }

    #[test]
    fn sizes_reject_garbage() {
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("").is_err());
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(ByteSize(512 << 20).to_string(), "512MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }
}
