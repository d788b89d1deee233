//! The pprof format (`perftools.profiles.Profile`, gzip-compressed protobuf),
//! written by hand: a profile here is a few message kinds of varints and
//! strings, and encoding them directly keeps the names the service chose
//! (allocator frames cut, ELF symbols) instead of a library's own
//! symbolisation.

use std::collections::HashMap;
use std::io::Write;

/// Protobuf wire types.
const VARINT: u64 = 0;
const BYTES: u64 = 2;

#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn key(&mut self, field: u64, wire: u64) {
        self.varint(field << 3 | wire);
    }

    fn uint(&mut self, field: u64, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v);
        }
    }

    fn int(&mut self, field: u64, v: i64) {
        self.uint(field, v as u64);
    }

    fn bytes(&mut self, field: u64, b: &[u8]) {
        self.key(field, BYTES);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn message(&mut self, field: u64, m: Message) {
        self.bytes(field, &m.0);
    }

    /// A packed repeated varint field.
    fn packed(&mut self, field: u64, values: impl IntoIterator<Item = u64>) {
        let mut inner = Message::default();
        for v in values {
            inner.varint(v);
        }
        self.bytes(field, &inner.0);
    }
}

/// Interns strings; index 0 is the empty string, as pprof requires.
struct Strings {
    index: HashMap<String, u64>,
    list: Vec<String>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            index: HashMap::from([(String::new(), 0)]),
            list: vec![String::new()],
        }
    }

    fn of(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u64;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// Encodes `stacks` (addresses root first, bytes) named by `names`, as an
/// in-use-space profile sampled every `period` bytes.
pub fn encode(stacks: &[(Vec<usize>, f64)], names: &HashMap<usize, String>, period: u64) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut profile = Message::default();
    let value_type = |strings: &mut Strings, kind: &str, unit: &str| {
        let mut m = Message::default();
        m.uint(1, strings.of(kind));
        m.uint(2, strings.of(unit));
        m
    };
    profile.message(1, value_type(&mut strings, "inuse_space", "bytes"));
    let (mut locations, mut functions): (HashMap<usize, u64>, HashMap<&str, u64>) = (HashMap::new(), HashMap::new());
    let (mut location_messages, mut function_messages) = (Vec::new(), Vec::new());
    for (addrs, bytes) in stacks {
        let mut ids = Vec::with_capacity(addrs.len());
        // pprof lists a sample's locations leaf first.
        for &addr in addrs.iter().rev() {
            let id = match locations.get(&addr) {
                Some(&id) => id,
                None => {
                    let name = names.get(&addr).map_or("", String::as_str);
                    let function = match functions.get(name) {
                        Some(&f) => f,
                        None => {
                            let f = functions.len() as u64 + 1;
                            let mut m = Message::default();
                            m.uint(1, f);
                            m.uint(2, strings.of(name));
                            m.uint(3, strings.of(name));
                            function_messages.push(m);
                            functions.insert(name, f);
                            f
                        }
                    };
                    let id = locations.len() as u64 + 1;
                    let mut line = Message::default();
                    line.uint(1, function);
                    let mut m = Message::default();
                    m.uint(1, id);
                    m.uint(3, addr as u64);
                    m.message(4, line);
                    location_messages.push(m);
                    locations.insert(addr, id);
                    id
                }
            };
            ids.push(id);
        }
        let mut sample = Message::default();
        sample.packed(1, ids);
        sample.packed(2, [*bytes as i64 as u64]);
        profile.message(2, sample);
    }
    for m in location_messages {
        profile.message(4, m);
    }
    for m in function_messages {
        profile.message(5, m);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    profile.int(9, now);
    profile.message(11, value_type(&mut strings, "space", "bytes"));
    profile.int(12, period as i64);
    // The string table last: every index is known by now.
    let mut table = Message::default();
    for s in &strings.list {
        table.bytes(6, s.as_bytes());
    }
    profile.0.extend_from_slice(&table.0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.0).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_are_protobufs() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, [0xAC, 0x02]);
        let mut m = Message::default();
        m.uint(1, 150);
        assert_eq!(m.0, [0x08, 0x96, 0x01]);
        let mut m = Message::default();
        m.bytes(2, b"testing");
        assert_eq!(m.0, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
    }

    #[test]
    fn a_profile_is_gzip_with_every_name_in_its_string_table() {
        let names = HashMap::from([(1, "main".to_string()), (2, "imaginator::work".to_string())]);
        let gz = encode(&[(vec![1, 2], 4096.0)], &names, 1 << 19);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for s in ["inuse_space", "bytes", "main", "imaginator::work"] {
            assert!(text.contains(s), "{s}");
        }
    }
}
