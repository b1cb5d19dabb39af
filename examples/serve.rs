//! The demo server: `GET /` says hello, `POST /echo` sends the body back.
//! `POST /upload` reads the body and answers with its length in bytes.
//!
//! `cargo run --release --example serve` listens on waitress's default
//! address, `0.0.0.0:8080`. Settings are given as waitress-serve style
//! options, `--name=value` (for example `--listen=127.0.0.1:9000
//! --threads=8`).

use maitred::{Adjustments, Request, Response};

fn demo(req: &mut Request) -> Response {
    match (req.method(), req.path().as_ref()) {
        (_, "/") => Response::new(200)
            .with_header("Content-Type", "text/plain")
            .with_body("Hello, World!"),
        ("POST", "/echo") | ("PUT", "/echo") => match req.body().to_vec() {
            Ok(body) => Response::new(200)
                .with_header("Content-Type", "application/octet-stream")
                .with_body(body),
            Err(e) => Response::new(500).with_body(format!("could not read the body: {e}\n")),
        },
        // Counts the body without holding it (benches/compare's 1 GiB upload).
        ("POST", "/upload") | ("PUT", "/upload") => {
            match std::io::copy(req.body(), &mut std::io::sink()) {
                Ok(n) => Response::text(n.to_string()),
                Err(e) => Response::new(500).with_body(format!("could not read the body: {e}\n")),
            }
        }
        (_, "/upload") => Response::status_page(405).with_header("Allow", "POST, PUT"),
        (_, "/echo") => Response::status_page(405).with_header("Allow", "POST, PUT"),
        _ => Response::status_page(404),
    }
}

fn main() {
    let mut adj = Adjustments::default();
    for arg in std::env::args().skip(1) {
        let Some(opt) = arg.strip_prefix("--") else {
            eprintln!("Error: unexpected argument {arg:?} (options look like --name=value)");
            std::process::exit(1);
        };
        let (name, value) = opt.split_once('=').unwrap_or((opt, "true"));
        if let Err(e) = adj.set(&name.replace('-', "_"), value) {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = maitred::serve(demo, adj) {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}
