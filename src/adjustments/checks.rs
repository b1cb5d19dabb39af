//! Checking settings before a server starts ([`Adjustments::validate`]):
//! waitress's rules for which settings go together, in waitress's order
//! and with its messages, then the checks on single values (numbers that
//! must be at least 1, seconds at most [`Adjustments::MAX_SECONDS`], a
//! non-negative `backlog`) and on the proxy settings (`trusted_proxy_count`
//! and `trusted_proxy_headers` only with `trusted_proxy`, known header
//! names, `trusted_proxy` a list that parses).
//!
//! Thread: any.

use super::Adjustments;
use crate::error::Error;

impl Adjustments {
    /// Checks the settings against each other (waitress's rules, in
    /// waitress's order and with its messages) without resolving any name:
    /// what resolving the listeners checks first.
    pub fn validate(&self) -> Result<(), Error> {
        let host_or_port = self.given("host") || self.given("port");
        let listen = self.given("listen");
        let sockets = self.given("sockets");
        let unix = self.given("unix_socket");
        if listen && host_or_port {
            return Err(Error::config(
                "host or port may not be set if listen is set.",
            ));
        }
        if listen && sockets {
            return Err(Error::config("socket may not be set if listen is set."));
        }
        if sockets && host_or_port {
            return Err(Error::config(
                "host or port may not be set if sockets is set.",
            ));
        }
        if sockets && unix {
            return Err(Error::config(
                "unix_socket may not be set if sockets is set",
            ));
        }
        if unix && host_or_port {
            return Err(Error::config(
                "unix_socket may not be set if host or port is set",
            ));
        }
        if unix && listen {
            return Err(Error::config("unix_socket may not be set if listen is set"));
        }
        if !self.ipv4 && !self.ipv6 {
            return Err(Error::config(
                "ipv4 and ipv6 are both disabled: no address family is left to listen on.",
            ));
        }
        if self.systemd_socket_activation
            && !self.activated
            && (listen || host_or_port || unix || sockets)
        {
            return Err(Error::config(
                "systemd_socket_activation may not be set if listen, host, port, unix_socket or sockets is set.",
            ));
        }
        self.check_numbers()?;
        self.check_proxy_settings()?;
        Ok(())
    }

    fn check_numbers(&self) -> Result<(), Error> {
        let positive = [
            ("threads", self.threads as u64),
            ("recv_bytes", self.recv_bytes as u64),
            ("connection_limit", self.connection_limit as u64),
            ("max_request_header_size", self.max_request_header_size),
            ("max_request_body_size", self.max_request_body_size),
            ("max_request_line_size", self.max_request_line_size),
            ("max_header_field_size", self.max_header_field_size),
            ("max_header_fields", self.max_header_fields as u64),
            ("handover_timeout", self.handover_timeout),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::config(format!(
                    "invalid value for {name}: 0 (it must be at least 1)"
                )));
            }
        }
        let seconds = [
            ("cleanup_interval", self.cleanup_interval),
            ("channel_timeout", self.channel_timeout),
            ("slow_request_warning", self.slow_request_warning),
            ("max_queue_wait", self.max_queue_wait),
            ("request_head_timeout", self.request_head_timeout),
            ("request_body_timeout", self.request_body_timeout),
            ("asyncore_loop_timeout", self.asyncore_loop_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
            ("handover_timeout", self.handover_timeout),
        ];
        for (name, v) in seconds {
            if v > Self::MAX_SECONDS {
                return Err(Error::config(format!(
                    "invalid value for {name}: {v} (it must be at most {} seconds, ten years)",
                    Self::MAX_SECONDS
                )));
            }
        }
        if self.io_threads > Self::MAX_IO_THREADS {
            return Err(Error::config(format!(
                "invalid value for io_threads: {} (it must be at most {}; 0 is one per core)",
                self.io_threads,
                Self::MAX_IO_THREADS
            )));
        }
        if self.backlog < 0 {
            return Err(Error::config(format!(
                "invalid value for backlog: {} (it must not be negative)",
                self.backlog
            )));
        }
        Ok(())
    }

    fn check_proxy_settings(&self) -> Result<(), Error> {
        if self.trusted_proxy_count.is_some() && self.trusted_proxy.is_none() {
            return Err(Error::config(
                "trusted_proxy_count has no meaning without setting trusted_proxy",
            ));
        }
        if self.proxy_protocol && self.trusted_proxy.is_none() {
            return Err(Error::config(
                "proxy_protocol needs trusted_proxy: the peers (load balancers) whose connections begin with a PROXY header",
            ));
        }
        if !self.trusted_proxy_headers.is_empty() && self.trusted_proxy.is_none() {
            return Err(Error::config(
                "trusted_proxy_headers has no meaning without setting trusted_proxy",
            ));
        }
        const KNOWN: [&str; 6] = [
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-by",
            "forwarded",
        ];
        let unknown: Vec<&str> = self
            .trusted_proxy_headers
            .iter()
            .map(String::as_str)
            .filter(|h| !KNOWN.contains(&h.to_ascii_lowercase().as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::config(format!(
                "Received unknown trusted_proxy_headers value ({}) expected one of {}",
                unknown.join(", "),
                KNOWN.join(", ")
            )));
        }
        if self.trusted_proxy_headers.contains("forwarded") && self.trusted_proxy_headers.len() > 1
        {
            return Err(Error::config(
                "The Forwarded proxy header and the X-Forwarded-{By,Host,Proto,Port,For} headers are mutually exclusive. Can't trust both!",
            ));
        }
        if let Some(spec) = &self.trusted_proxy {
            crate::trusted::TrustedProxies::parse(spec)?;
        }
        Ok(())
    }
}
