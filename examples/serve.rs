//! The demo server, driven like `waitress-serve`: every waitress setting is
//! an option (`--listen=127.0.0.1:9000 --threads=8`, `--help` lists them
//! all), and `--app=NAME` chooses the application:
//!
//! * `hello` (the default): `GET /` says `Hello, World!`, `POST /echo`
//!   sends the body back;
//! * `echo`: every request's body back;
//! * `static`: the files under `--root=DIR` (default `.`), sent with
//!   `sendfile(2)`.
//!
//! `cargo run --release --example serve -- --help`
//!
//! `cargo run --release --example serve -- --app=static --root=target/doc --listen=127.0.0.1:8080`

mod apps;

fn main() {
    let code = apps::main_with(
        std::env::args_os().skip(1),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
