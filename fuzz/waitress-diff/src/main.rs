//! Reads cases from `diff.py` on standard input, one per line:
//! `<trusted bits> <count> <scheme> <present bits> <hex value> x6` (bit i is
//! `ProxyHeader::ALL[i]`), runs maitred's `parse_proxy_headers` on each and
//! prints the outcome as `ERR <header>` or `OK <untrusted> <remote_addr>
//! <remote_port> <server_name> <server_port> <scheme> <host> <headers>`,
//! `-` meaning "unchanged" and text in hex.

use maitred::proxy_headers::{parse_proxy_headers, HeaderSet, ProxyHeader, ProxyHeaderValues};
use std::io::{BufRead, Write};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02x}")).collect()
}

fn latin1_hex(s: &str) -> String {
    hex(&s.chars().map(|c| c as u8).collect::<Vec<u8>>())
}

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() != 10 {
            let _ = writeln!(out, "BAD INPUT");
            continue;
        }
        let bits: u8 = f[0].parse().unwrap_or(0);
        let count: usize = f[1].parse().unwrap_or(1);
        let scheme = f[2];
        let present: u8 = f[3].parse().unwrap_or(0);
        let vals: Vec<Vec<u8>> = f[4..].iter().map(|v| unhex(v)).collect();
        let mut trusted = HeaderSet::EMPTY;
        let mut values = ProxyHeaderValues::new();
        for (i, h) in ProxyHeader::ALL.into_iter().enumerate() {
            if bits & (1 << i) != 0 {
                trusted.insert(h);
            }
            if present & (1 << i) != 0 {
                values.set(h, &vals[i]);
            }
        }
        let line = match parse_proxy_headers(&values, count, trusted, scheme, &mut |_| {}) {
            Err(e) => format!("ERR {}", e.header.replace(' ', "_")),
            Ok(o) => {
                let mut untrusted: Vec<&str> = o.untrusted.iter().map(ProxyHeader::name).collect();
                untrusted.sort_unstable();
                let headers: Vec<String> = ProxyHeader::ALL
                    .into_iter()
                    .map(|h| match o.rewritten.iter().find(|(x, _)| *x == h) {
                        Some((_, v)) => hex(v),
                        None => values.get(h).map_or("-".into(), hex),
                    })
                    .collect();
                format!(
                    "OK {} {} {} {} {} {} {} {}",
                    untrusted.join(","),
                    o.remote_addr.as_deref().map_or("-".into(), latin1_hex),
                    match o.remote_port {
                        None => "-".to_string(),
                        Some(None) => String::new(),
                        Some(Some(p)) => p.to_string(),
                    },
                    o.server_name.as_deref().map_or("-".into(), latin1_hex),
                    o.server_port.map_or("-".into(), |p| p.to_string()),
                    o.url_scheme.unwrap_or("-"),
                    o.host.as_deref().map_or("-".into(), hex),
                    headers.join(","),
                )
            }
        };
        let _ = writeln!(out, "{line}");
    }
}
