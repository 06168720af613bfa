//! HTTP and HTTPS GET probe (extension, `--http-get PATH [--https]`).
//!
//! `GET http[s]://RIP:RPORT/PATH` with a `Host` header (`--http-host`, else the address),
//! no redirects followed, the status checked against a list (`--http-status`, default
//! 200-399), and the first 64 KiB of the body matched against `-x` when one is given
//! (substring, or regex with `--regex`). TLS is rustls: the server certificate is verified
//! against `--tls-ca` (PEM bundle) added to the built-in webpki roots, or not at all with
//! `--tls-no-verify`; the name checked is the address in the URL, so the certificate needs an
//! IP subject alternative name. A verification error is a failed probe whose reason carries
//! rustls's explanation (e.g. `invalid peer certificate: UnknownIssuer`).
//!
//! The reqwest client (and with it a small tokio runtime thread and the TLS stack) is built
//! at the first probe, so a nanny without an HTTP probe never pays for it.

use std::io::Read;
use std::time::Duration;

use super::{ProbeError, error_chain};
use crate::text::StatusList;

/// Body bytes read and matched at most.
pub const BODY_LIMIT: u64 = 64 * 1024;

/// How the body is matched.
#[derive(Debug, Clone)]
pub enum BodyMatch {
    /// Contains this text.
    Substring(String),
    /// The regex matches somewhere.
    Regex(regex::bytes::Regex),
}

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Extra trusted roots, from `--tls-ca`.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// `--tls-no-verify`.
    pub no_verify: bool,
    /// Why `--tls-ca` could not be used: every probe fails with this reason (a restart loop
    /// would end in lvsd's `hard_shutdown`; a failing probe only affects this server).
    pub ca_error: Option<String>,
}

/// An HTTP(S) GET probe.
#[derive(Debug)]
pub struct HttpProbe {
    /// The URL requested.
    pub url: String,
    /// `Host` header value, when not the URL's host.
    pub host: Option<String>,
    /// Accepted statuses.
    pub statuses: StatusList,
    /// Body match, if any.
    pub body: Option<BodyMatch>,
    /// TLS settings (https only).
    pub tls: TlsSettings,
    client: Option<reqwest::blocking::Client>,
}

impl HttpProbe {
    /// A probe of `url`; nothing is built or connected yet.
    pub fn new(
        url: String,
        host: Option<String>,
        statuses: StatusList,
        body: Option<BodyMatch>,
        tls: TlsSettings,
    ) -> Self {
        Self {
            url,
            host,
            statuses,
            body,
            tls,
            client: None,
        }
    }

    fn client(&mut self, timeout: Duration) -> Result<&reqwest::blocking::Client, ProbeError> {
        if let Some(reason) = &self.tls.ca_error {
            return Err(ProbeError::Http {
                url: self.url.clone(),
                detail: reason.clone(),
            });
        }
        if self.client.is_none() {
            let mut builder = reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .pool_max_idle_per_host(0)
                .danger_accept_invalid_certs(self.tls.no_verify);
            for cert in &self.tls.extra_roots {
                builder = builder.add_root_certificate(cert.clone());
            }
            self.client = Some(builder.build().map_err(|e| self.fail(&e))?);
        }
        Ok(self.client.as_ref().expect("built just above"))
    }

    fn fail(&self, e: &dyn std::error::Error) -> ProbeError {
        ProbeError::Http {
            url: self.url.clone(),
            detail: error_chain(e),
        }
    }

    /// Runs once; the client's timeout covers connect, TLS, headers and body.
    pub fn run(&mut self, timeout: Duration) -> Result<(), ProbeError> {
        let client = self.client(timeout)?.clone();
        let mut request = client.get(&self.url).timeout(timeout);
        if let Some(host) = &self.host {
            request = request.header(reqwest::header::HOST, host);
        }
        let response = request.send().map_err(|e| self.fail(&e))?;
        let status = response.status().as_u16();
        if !self.statuses.contains(status) {
            return Err(ProbeError::HttpStatus {
                url: self.url.clone(),
                status,
                expected: self.statuses.to_string(),
            });
        }
        let Some(body_match) = &self.body else {
            return Ok(());
        };
        let mut body = Vec::new();
        response
            .take(BODY_LIMIT)
            .read_to_end(&mut body)
            .map_err(|e| self.fail(&e))?;
        let (ok, expect) = match body_match {
            BodyMatch::Substring(s) => (
                body.windows(s.len().max(1)).any(|w| w == s.as_bytes()) || s.is_empty(),
                s.clone(),
            ),
            BodyMatch::Regex(r) => (r.is_match(&body), r.as_str().to_owned()),
        };
        if ok {
            Ok(())
        } else {
            Err(ProbeError::HttpBody {
                url: self.url.clone(),
                expect,
            })
        }
    }
}
