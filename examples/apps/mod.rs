//! The demo applications of the `serve` example, and its command line.
//!
//! * `hello` (the default): `GET /` answers `Hello, World!` (13 bytes, with
//!   `Content-Length`); `POST /echo` (or `PUT`) sends the body back.
//! * `echo`: any request's body back, with its method and path in the
//!   `X-Method` and `X-Path` headers.
//! * `static`: the files under `--root=DIR`, see [`static_files`].
//!
//! The tests include this module too (`tests/serve_example.rs`), so the
//! apps are tested over real sockets.

pub mod static_files;

use std::ffi::OsString;
use std::io::Write;

use maitred::runner::{Cli, CliOption, ParsedArgs};
use maitred::{App, Request, Response};

/// `GET /` says hello, `POST /echo` sends the body back.
///
/// A benchmark harness depends on exactly this behaviour: keep it.
pub fn hello(req: &mut Request) -> Response {
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
        (_, "/echo") => Response::status_page(405).with_header("Allow", "POST, PUT"),
        _ => Response::status_page(404),
    }
}

/// Every request's body back, whatever the method and path, with the
/// request's content type, and its method and path in `X-Method` and
/// `X-Path`.
pub fn echo(req: &mut Request) -> Response {
    let body = match req.body().to_vec() {
        Ok(b) => b,
        Err(e) => return Response::new(500).with_body(format!("could not read the body: {e}\n")),
    };
    let ctype = req
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_string();
    Response::new(200)
        .with_header("Content-Type", ctype)
        .with_header("X-Method", req.method().to_string())
        .with_header("X-Path", req.path().into_owned())
        .with_body(body)
}

/// The command line of the `serve` example: every setting, plus `--app`
/// and `--root`.
pub fn cli() -> Cli {
    Cli::new("serve")
        .about(
            "Serves one of the built-in demo applications with maitred. Every waitress-serve setting is an option.",
        )
        .option(CliOption::value(
            "app",
            "NAME",
            "hello",
            "The application: 'hello' (GET / says hello, POST /echo echoes the body), 'echo' (every request's body back) or 'static' (the files under --root).",
        ))
        .option(CliOption::value(
            "root",
            "DIR",
            ".",
            "The directory the static application serves.",
        ))
}

/// The application the command line asks for.
pub fn choose(args: &ParsedArgs) -> Result<Box<dyn App>, String> {
    let name = args.option("app").unwrap_or("hello");
    match name {
        "hello" => Ok(Box::new(hello)),
        "echo" => Ok(Box::new(echo)),
        "static" => {
            let root = args.option("root").unwrap_or(".");
            let files =
                static_files::StaticFiles::new(root).map_err(|e| format!("--root={root}: {e}"))?;
            Ok(Box::new(files))
        }
        other => Err(format!(
            "unknown application {other:?} (--app): choose hello, echo or static"
        )),
    }
}

/// The `serve` example's `main`, minus the process: parses `args` (without
/// the program name), serves until SIGINT/SIGTERM, and returns the exit
/// code.
pub fn main_with<I, S>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    cli().run(args, out, err, |args| {
        let app = choose(&args)?;
        maitred::serve(move |req: &mut Request| app.call(req), args.adjustments)
            .map_err(|e| e.to_string())
    })
}
