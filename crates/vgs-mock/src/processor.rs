//! A stand-in payment processor on loopback, for proxy tests and demos: it records
//! every request it receives (so a test can show the card reached it) and answers a
//! JSON document of the caller's choice, over http or https (a certificate from a
//! [`CertificateAuthority`], e.g. the mock's proxy authority).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::lock;
use crate::tls::CertificateAuthority;

/// One request the processor received. `Debug` hides the body: it is card data.
#[derive(Clone)]
#[non_exhaustive]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The `Content-Type`, or empty.
    pub content_type: String,
    /// The body, as text.
    pub body: String,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .finish()
    }
}

/// A processor on `127.0.0.1`; stops when dropped.
pub struct StandInProcessor {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<(u16, Value)>>,
    task: JoinHandle<()>,
}

impl StandInProcessor {
    /// Starts on a free loopback port, answering `answer` with 200; over https when
    /// `tls` is given (a certificate for `127.0.0.1` from that authority).
    pub async fn start(answer: Value, tls: Option<&CertificateAuthority>) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = match tls {
            Some(authority) => Some(acceptor(authority).map_err(std::io::Error::other)?),
            None => None,
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new((200u16, answer)));
        let (log, reply) = (Arc::clone(&received), Arc::clone(&answer));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, reply, acceptor) =
                    (Arc::clone(&log), Arc::clone(&reply), acceptor.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let log = Arc::clone(&log);
                            let (status, answer) = {
                                let reply = lock(&reply);
                                (reply.0, reply.1.to_string())
                            };
                            async move {
                                let method = request.method().to_string();
                                let path = request
                                    .uri()
                                    .path_and_query()
                                    .map_or("/", |p| p.as_str())
                                    .to_owned();
                                let content_type = request
                                    .headers()
                                    .get("content-type")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                let body = match request.into_body().collect().await {
                                    Ok(body) => body.to_bytes(),
                                    Err(_) => Default::default(),
                                };
                                lock(&log).push(Received {
                                    method,
                                    path,
                                    content_type,
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                });
                                let response = hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .header("x-processor", "stand-in")
                                    .body(Body::from(answer))
                                    .expect("a valid response");
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let served = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                http1::Builder::new()
                                    .serve_connection(TokioIo::new(tls), service)
                                    .await
                            }
                            Err(_) => return,
                        },
                        None => {
                            http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                    };
                    if let Err(error) = served {
                        tracing::trace!(%error, "stand-in processor connection ended with an error");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            received,
            answer,
            task,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// The last request received, if any.
    pub fn last(&self) -> Option<Received> {
        lock(&self.received).last().cloned()
    }

    /// How many requests it received.
    pub fn count(&self) -> usize {
        lock(&self.received).len()
    }

    /// What it answers from now on (with 200).
    pub fn answer_with(&self, answer: Value) {
        self.answer_with_status(200, answer);
    }

    /// What it answers from now on, with this status (a decline, its own 500, 429).
    /// A status outside 100..=599 is answered as 500.
    pub fn answer_with_status(&self, status: u16, answer: Value) {
        let status = if (100..=599).contains(&status) {
            status
        } else {
            500
        };
        *lock(&self.answer) = (status, answer);
    }
}

impl Drop for StandInProcessor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn acceptor(authority: &CertificateAuthority) -> Result<tokio_rustls::TlsAcceptor, String> {
    let issued = authority.issue("127.0.0.1")?;
    let chain = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the issued chain is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| format!("the issued key is not PEM: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
        chain, key,
    )?))
}
