"""Side-by-side: waitress 3.0.2's parse_proxy_headers against maitred's.

    CARGO_TARGET_DIR=... cargo build --manifest-path fuzz/waitress-diff/Cargo.toml
    python3 fuzz/waitress-diff/diff.py <path of the built waitress-diff> [seed] [cases]

Random header sets are built from pieces that matter to the rules
(addresses, ports, quotes, separators, Forwarded tokens, latin-1 bytes that
Python's strip() and lower() treat specially). Every disagreement is put in
a category; the expected ones are the rows of DIFFERENCES.md's "Proxy
headers" section. Anything in an UNEXPLAINED category is a bug to look at.
"""
import collections
import ipaddress
import logging
import random
import subprocess
import sys

from waitress.proxy_headers import MalformedProxyHeader, parse_proxy_headers

logging.disable(logging.CRITICAL)

ENV_NAMES = ["X_FORWARDED_FOR", "X_FORWARDED_HOST", "X_FORWARDED_PROTO",
             "X_FORWARDED_PORT", "X_FORWARDED_BY", "FORWARDED"]
SETTING = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
           "x-forwarded-port", "x-forwarded-by", "forwarded"]
PRETTY = {n: "-".join(p.capitalize() for p in n.split("_")) for n in ENV_NAMES}
PIECES = ["192.0.2.1", "198.51.100.7", "10.0.0.9", "2001:db8::1", "[2001:db8::1]", "::1",
          "::ffff:1.2.3.4", "fe80::1%eth0", "example.com", "proxy", "a.example", "Example.COM",
          "unknown", "_hidden", ":", ":80", ":443", "80", "443", "8080", "0", "65535", "65536",
          "08080", "x", ",", ", ", ",", ";", ";", "=", "=", "for=", "host=", "proto=", "by=",
          "For=", "Host=", "Proto=", "secret=", '"', '"', "\\", "http", "https", "HTTP", "ftp",
          " ", "\t", "[", "]", "\xa0", "\x85", "\xc0", "\xe9", "1.2.3.4:5678", "[::1]:80", "", ""]
BASE = {"ra": "127.0.0.1", "rp": "8080", "sn": "localhost", "sp": "8080", "host": "h"}


def value():
    s = "".join(random.choice(PIECES) for _ in range(random.randint(0, 6)))
    return s.strip(" \t")  # the request parser strips SP/HTAB around values


def waitress(bits, count, scheme, present, vals):
    env = {"REMOTE_ADDR": BASE["ra"], "REMOTE_HOST": BASE["ra"], "REMOTE_PORT": BASE["rp"],
           "SERVER_NAME": BASE["sn"], "SERVER_PORT": BASE["sp"], "wsgi.url_scheme": scheme,
           "HTTP_HOST": BASE["host"]}
    for i, n in enumerate(ENV_NAMES):
        if present >> i & 1:
            env["HTTP_" + n] = vals[i]
    trusted = {SETTING[i] for i in range(6) if bits >> i & 1}
    try:
        untrusted = parse_proxy_headers(env, count, trusted)
    except MalformedProxyHeader as e:
        return "ERR " + e.header.replace(" ", "_")
    except Exception as e:  # waitress's own crashes (a 500 on the wire)
        return "CRASH " + type(e).__name__
    return ("OK", sorted(PRETTY[u] for u in untrusted), env["REMOTE_ADDR"],
            str(env["REMOTE_PORT"]), env["SERVER_NAME"], env["SERVER_PORT"],
            env["wsgi.url_scheme"], env["HTTP_HOST"],
            [env.get("HTTP_" + n, "-") for n in ENV_NAMES])


def unhex(h):
    return bytes.fromhex(h).decode("latin-1")


def maitred(line, scheme):
    if line.startswith("ERR"):
        return line
    p = line.split(" ")
    keep = lambda v, base, f=lambda x: x: base if v == "-" else f(v)
    return ("OK", [x for x in p[1].split(",") if x], keep(p[2], BASE["ra"], unhex),
            keep(p[3], BASE["rp"]), keep(p[4], BASE["sn"], unhex), keep(p[5], BASE["sp"]),
            keep(p[6], scheme), keep(p[7], BASE["host"], unhex),
            ["-" if x == "-" else unhex(x) for x in p[8].split(",")])


def is_v6(x):
    try:
        ipaddress.IPv6Address(x.split("%")[0])
        return True
    except ValueError:
        return False


def bad_port(x):
    return x != "" and not (x.isascii() and x.isdigit() and int(x) <= 65535)


def category(w, m):
    if isinstance(w, str) and w.startswith("CRASH"):
        return "waitress crashes (500), maitred: " + (m if isinstance(m, str) else "OK")
    if isinstance(m, str) and not isinstance(w, str):
        if bad_port(w[5]):
            return "maitred 400: waitress's SERVER_PORT is not a port number"
        if bad_port(w[3]):
            return "maitred 400: waitress's REMOTE_PORT is not a port number"
        if w[2] == "":
            return "maitred 400: waitress's REMOTE_ADDR is empty"
        if w[2].startswith("[") and "]:" in w[2]:
            addr, port = w[2][1:].split("]:", 1)
            if is_v6(addr) and port.isdigit():
                return "maitred 400: a port above 65535 after [IPv6]: (waitress: the whole as REMOTE_ADDR)"
        return "UNEXPLAINED: maitred 400, waitress OK"
    if isinstance(w, str) or isinstance(m, str):
        return "UNEXPLAINED: different errors"
    names = ["status", "untrusted", "remote_addr", "remote_port", "server_name",
             "server_port", "scheme", "host", "headers"]
    diffs = [n for n, a, b in zip(names, w, m) if a != b]
    if diffs in (["remote_addr", "remote_port"], ["remote_addr"]) and is_v6(m[2]):
        return "maitred reads an IPv6 client address whole"
    if diffs in (["server_port"], ["remote_port"]):
        a, b = (w[5], m[5]) if diffs == ["server_port"] else (w[3], m[3])
        if a.isascii() and a.isdigit() and int(a) == int(b):
            return "a port with leading zeros is a number"
    return "UNEXPLAINED: " + ",".join(diffs)


def main():
    binary = sys.argv[1]
    random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    cases = []
    for _ in range(n):
        bits = (random.choice([0b011111, 0b100000, 0b000001, 0b000111, 0b001110, 0b000011])
                if random.random() < 0.5 else random.randint(0, 63))
        cases.append((bits, random.choice([0, 1, 1, 1, 2, 3]), random.choice(["http", "https"]),
                      random.randint(0, 63), [value() for _ in range(6)]))
    lines = "".join("%d %d %s %d %s\n" % (b, c, s, p, " ".join(v.encode("latin-1").hex() for v in vals))
                    for b, c, s, p, vals in cases)
    out = subprocess.run([binary], input=lines.encode(), capture_output=True, check=True)
    results = out.stdout.decode().splitlines()
    assert len(results) == n
    counts = collections.Counter()
    examples = {}
    for case, line in zip(cases, results):
        w, m = waitress(*case), maitred(line, case[2])
        if w == m:
            continue
        key = category(w, m)
        counts[key] += 1
        examples.setdefault(key, []).append((case, w, m))
    print("cases", n, "identical", n - sum(counts.values()))
    for key, k in counts.most_common():
        print("%6d  %s" % (k, key))
        if key.startswith("UNEXPLAINED"):
            for ex in examples[key][:3]:
                print("        ", ex)
    sys.exit(1 if any(k.startswith("UNEXPLAINED") for k in counts) else 0)


if __name__ == "__main__":
    main()
