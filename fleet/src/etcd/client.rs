//! etcd v3 over its JSON gRPC gateway: `POST /v3/...` with base64 keys and values, int64 fields
//! as strings. Several endpoints, tried in turn, so one dead member does not stop a host.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use url::Url;

use crate::error::{Error, Result};

/// Timeouts of one request to one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Whole request.
    pub request: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        }
    }
}

/// A client of an etcd cluster's JSON gateway.
#[derive(Debug)]
pub struct EtcdClient {
    endpoints: Vec<Url>,
    http: reqwest::Client,
    /// The endpoint that answered last; requests start there.
    preferred: AtomicUsize,
    round_trips: AtomicUsize,
}

/// Parse `http://host:port[,http://...]` into endpoint URLs.
pub fn parse_endpoints(list: &str) -> Result<Vec<Url>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = Url::parse(item).map_err(|e| Error::InvalidInput {
            what: "etcd endpoint",
            value: item.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::InvalidInput {
                what: "etcd endpoint",
                value: item.to_string(),
                reason: "expected an http:// or https:// client URL such as http://127.0.0.1:2379"
                    .to_string(),
            });
        }
        out.push(url);
    }
    if out.is_empty() {
        return Err(Error::InvalidInput {
            what: "etcd endpoint list",
            value: list.to_string(),
            reason: "no endpoint given".to_string(),
        });
    }
    Ok(out)
}

impl EtcdClient {
    /// A client for `endpoints` (at least one).
    pub fn new(endpoints: Vec<Url>, timeouts: ClientTimeouts) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::InvalidInput {
                what: "etcd endpoint list",
                value: String::new(),
                reason: "no endpoint given".to_string(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .build()
            .map_err(|e| Error::InvalidInput {
                what: "HTTP client setup",
                value: String::new(),
                reason: e.to_string(),
            })?;
        Ok(EtcdClient {
            endpoints,
            http,
            preferred: AtomicUsize::new(0),
            round_trips: AtomicUsize::new(0),
        })
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> &[Url] {
        &self.endpoints
    }

    /// Number of HTTP requests sent so far (every attempt, for benchmarks).
    pub fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// POST `body` to `path` on the first endpoint that answers, starting with the one that
    /// answered last. Connection failures, timeouts and "unavailable" answers (a member without
    /// a leader, a stopping member) move on to the next endpoint; other error answers are final.
    pub(crate) async fn call<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        let n = self.endpoints.len();
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut tried = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let base = &self.endpoints[index];
            let url = base.join(path).map_err(|e| Error::InvalidInput {
                what: "etcd endpoint",
                value: base.to_string(),
                reason: e.to_string(),
            })?;
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let response = match self.http.post(url.clone()).json_body(body).send().await {
                Ok(r) => r,
                Err(e) => {
                    tried.push(format!("{base}: {}", describe(&e)));
                    continue;
                }
            };
            let status = response.status();
            let bytes = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    tried.push(format!("{base}: {}", describe(&e)));
                    continue;
                }
            };
            if !status.is_success() {
                let (code, message) = error_of(&bytes);
                // gRPC code 14 = unavailable, 4 = deadline exceeded: another member may answer.
                if status.as_u16() == 503 || matches!(code, Some(14) | Some(4)) {
                    tried.push(format!("{base}: HTTP {}: {message}", status.as_u16()));
                    continue;
                }
                return Err(Error::EtcdRefused {
                    url: base.to_string(),
                    path: path.to_string(),
                    status: status.as_u16(),
                    message,
                });
            }
            self.preferred.store(index, Ordering::Relaxed);
            // Streaming calls (lease keepalive) answer with newline-separated objects: take the
            // first one.
            let mut values = serde_json::Deserializer::from_slice(&bytes).into_iter::<T>();
            return match values.next() {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(Error::BadResponse {
                    url: base.to_string(),
                    path: path.to_string(),
                    reason: format!("{e} in {}", String::from_utf8_lossy(&bytes)),
                }),
                None => Err(Error::BadResponse {
                    url: base.to_string(),
                    path: path.to_string(),
                    reason: "empty body".to_string(),
                }),
            };
        }
        Err(Error::Unreachable {
            path: path.to_string(),
            tried: tried.join("; "),
        })
    }
}

trait JsonBody {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn error_of(bytes: &[u8]) -> (Option<i64>, String) {
    let text = String::from_utf8_lossy(bytes).trim().to_string();
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => {
            let v = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
            let code = v.get("code").and_then(Value::as_i64);
            let message = v
                .get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(text);
            (code, message)
        }
        Err(_) => (None, text),
    }
}

/// Base64 of a key or value.
pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The end of the range that holds every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return b64(&bytes);
        }
    }
    b64(&[0])
}

/// An int64 that the gateway writes as a string.
fn int64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(i64),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// One key-value pair.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct KeyValue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "int64")]
    pub mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    pub lease: i64,
}

impl KeyValue {
    pub fn key(&self) -> String {
        String::from_utf8_lossy(&B64.decode(&self.key).unwrap_or_default()).into_owned()
    }
    pub fn value(&self) -> Vec<u8> {
        B64.decode(&self.value).unwrap_or_default()
    }
}

/// `/v3/kv/range` answer (also inside a txn answer).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RangeResponse {
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// One operation's answer inside a txn answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OpResponse {
    #[serde(default)]
    pub response_range: Option<RangeResponse>,
    #[serde(default)]
    pub response_delete_range: Option<DeleteResponse>,
}

/// `/v3/kv/deleterange` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DeleteResponse {
    #[serde(default)]
    pub prev_kvs: Vec<KeyValue>,
}

/// `/v3/kv/txn` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TxnResponse {
    #[serde(default)]
    pub succeeded: bool,
    #[serde(default)]
    pub responses: Vec<OpResponse>,
}

/// `/v3/lease/grant` answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LeaseGrant {
    #[serde(rename = "ID", deserialize_with = "int64")]
    pub id: i64,
}

/// `/v3/lease/keepalive` answer (one element of the stream).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeepAliveStream {
    #[serde(default)]
    pub result: Option<KeepAlive>,
}

/// One keepalive answer: TTL 0 (or missing) means the lease is gone.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeepAlive {
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    pub ttl: i64,
}

/// A txn operation: range over one key, or every key under a prefix.
pub(crate) fn op_range(key: &str, prefix: bool) -> Value {
    if prefix {
        json!({"request_range": {"key": b64(key.as_bytes()), "range_end": prefix_end(key)}})
    } else {
        json!({"request_range": {"key": b64(key.as_bytes())}})
    }
}

/// A txn operation: put, optionally attached to a lease.
pub(crate) fn op_put(key: &str, value: &[u8], lease: Option<i64>) -> Value {
    let mut put = json!({"key": b64(key.as_bytes()), "value": b64(value)});
    if let Some(lease) = lease {
        put["lease"] = json!(lease.to_string());
    }
    json!({ "request_put": put })
}

/// A txn operation: delete one key, returning what it held.
pub(crate) fn op_delete(key: &str) -> Value {
    json!({"request_delete_range": {"key": b64(key.as_bytes()), "prev_kv": true}})
}

/// A txn comparison: the key's mod revision equals `revision` (0 = the key does not exist).
pub(crate) fn cmp_mod_revision(key: &str, revision: i64) -> Value {
    json!({"key": b64(key.as_bytes()), "target": "MOD", "result": "EQUAL",
           "mod_revision": revision.to_string()})
}

/// A txn comparison: the key does not exist.
pub(crate) fn cmp_absent(key: &str) -> Value {
    json!({"key": b64(key.as_bytes()), "target": "VERSION", "result": "EQUAL", "version": "0"})
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/a/"), b64(b"/a0"));
        assert_eq!(prefix_end("a\u{7f}"), b64(b"a\x80"));
    }

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(
            parse_endpoints("http://127.0.0.1:1, http://127.0.0.1:2")
                .unwrap()
                .len(),
            2
        );
        let err = parse_endpoints("127.0.0.1:2379").unwrap_err().to_string();
        assert!(
            err.contains("invalid etcd endpoint '127.0.0.1:2379'"),
            "{err}"
        );
        assert!(parse_endpoints(" , ").is_err());
    }

    #[test]
    fn int64_as_string_or_number() {
        let g: LeaseGrant = serde_json::from_str(r#"{"ID":"7587","TTL":10}"#).unwrap();
        assert_eq!(g.id, 7587);
        let g: LeaseGrant = serde_json::from_str(r#"{"ID":7588}"#).unwrap();
        assert_eq!(g.id, 7588);
        let k: KeepAliveStream =
            serde_json::from_str(r#"{"result":{"header":{},"ID":"1"}}"#).unwrap();
        assert_eq!(k.result.unwrap().ttl, 0);
    }

    #[test]
    fn error_bodies() {
        let (code, msg) = error_of(
            br#"{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}"#,
        );
        assert_eq!((code, msg.as_str()), (Some(14), "etcdserver: no leader"));
        assert_eq!(error_of(b"garbage").1, "garbage");
    }
}
