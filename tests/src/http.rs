//! A static file server on `127.0.0.1:0` for tests, with a request log and fault injection.
//!
//! One thread accepts; one thread per connection answers `GET` and `HEAD`, honours
//! `Range: bytes=N-` and `bytes=N-M` (206), and closes each connection after its response.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD`.
    pub method: String,
    /// Path without the query string, percent-decoded.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub query: String,
    /// The `Range` header, if sent.
    pub range: Option<String>,
    /// Status code answered.
    pub status: u16,
    /// Body bytes sent.
    pub bytes_sent: u64,
}

/// A fault the server injects into its answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Serve files normally.
    #[default]
    None,
    /// For paths ending with `suffix`: send only `bytes` body bytes, then close the connection
    /// (the `Content-Length` still announces the whole body). Applies `times` times, then the
    /// server behaves normally again.
    CutAfter {
        /// Path suffix to match.
        suffix: String,
        /// Body bytes to send before closing.
        bytes: u64,
        /// How many requests to cut.
        times: u32,
    },
    /// For paths ending with `suffix`: stream endless bytes without `Content-Length`.
    Endless {
        /// Path suffix to match.
        suffix: String,
    },
    /// Answer paths ending with `suffix` with this status and an empty body.
    Status {
        /// Path suffix to match.
        suffix: String,
        /// Status code to answer.
        status: u16,
    },
    /// Ignore `Range` headers: always answer 200 with the full body, without `Accept-Ranges`.
    NoRanges,
}

struct Shared {
    root: PathBuf,
    log: Mutex<Vec<Request>>,
    fault: Mutex<Fault>,
    /// Body bytes per second of each response (None: as fast as loopback goes).
    rate: Mutex<Option<u64>>,
    stop: AtomicBool,
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct Server {
    shared: Arc<SharedDebug>,
    port: u16,
    accept: Option<JoinHandle<()>>,
}

// Newtype so that `Server` can derive Debug without printing the log.
struct SharedDebug(Shared);
impl std::fmt::Debug for SharedDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("root", &self.0.root)
            .finish()
    }
}

impl Server {
    /// Serve the files under `root` on `127.0.0.1` at an ephemeral port.
    pub fn serve_dir(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(SharedDebug(Shared {
            root: root.to_path_buf(),
            log: Mutex::new(Vec::new()),
            fault: Mutex::new(Fault::None),
            rate: Mutex::new(None),
            stop: AtomicBool::new(false),
        }));
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.0.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn_shared = Arc::clone(&accept_shared);
                std::thread::spawn(move || {
                    let _ = handle(&conn_shared.0, stream);
                });
            }
        });
        Server {
            shared,
            port,
            accept: Some(accept),
        }
    }

    /// Base URL with a trailing slash, e.g. `http://127.0.0.1:41234/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.0.log.lock().expect("log lock").clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.shared.0.log.lock().expect("log lock").clear();
    }

    /// Replace the current fault.
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.0.fault.lock().expect("fault lock") = fault;
    }

    /// Paces every response body at `bytes_per_sec` (a link slower than loopback, for
    /// benchmarks whose figure depends on the bandwidth); `None` serves at full speed.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        *self.shared.0.rate.lock().expect("rate lock") = bytes_per_sec.filter(|r| *r > 0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.0.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

/// Parse `bytes=N-` or `bytes=N-M` against a body of `len` bytes.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = if end.trim().is_empty() {
        len.checked_sub(1)?
    } else {
        end.trim().parse().ok()?
    };
    (start <= end && start < len).then_some((start, end.min(len - 1)))
}

fn handle(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    // Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40-100 ms.
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = percent_decode(raw_path);
    let fault = shared.fault.lock().expect("fault lock").clone();
    let mut out = stream;
    let record = |status: u16, bytes_sent: u64| {
        shared.log.lock().expect("log lock").push(Request {
            method: method.clone(),
            path: path.clone(),
            query: query.to_string(),
            range: range.clone(),
            status,
            bytes_sent,
        });
    };

    match &fault {
        Fault::Status { suffix, status } if path.ends_with(suffix.as_str()) => {
            write!(
                out,
                "HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            record(*status, 0);
            return Ok(());
        }
        Fault::Endless { suffix } if path.ends_with(suffix.as_str()) => {
            write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![0x5au8; 64 * 1024];
            let mut sent = 0u64;
            // Bounded so that a broken client cannot keep a test thread alive forever.
            while sent < 64 * 1024 * 1024 * 1024 && out.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
            }
            record(200, sent);
            return Ok(());
        }
        _ => {}
    }

    if method != "GET" && method != "HEAD" {
        write!(
            out,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        record(405, 0);
        return Ok(());
    }
    let file = resolve(&shared.root, &path).and_then(|p| std::fs::File::open(p).ok());
    let Some(mut file) = file.filter(|f| f.metadata().is_ok_and(|m| m.is_file())) else {
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        record(404, 0);
        return Ok(());
    };
    let len = file.metadata()?.len();
    let honour_ranges = fault != Fault::NoRanges;
    let (status, start, end) = match range.as_deref().filter(|_| honour_ranges) {
        Some(r) => match parse_range(r, len) {
            Some((s, e)) => (206, s, e),
            None => {
                write!(
                    out,
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )?;
                record(416, 0);
                return Ok(());
            }
        },
        None => (200, 0, len.saturating_sub(1)),
    };
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {body_len}\r\nConnection: close\r\n",
        if status == 206 {
            "Partial Content"
        } else {
            "OK"
        }
    );
    if honour_ranges {
        head.push_str("Accept-Ranges: bytes\r\n");
    }
    if status == 206 {
        head.push_str(&format!("Content-Range: bytes {start}-{end}/{len}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        record(status, 0);
        return Ok(());
    }

    let mut limit = body_len;
    if let Fault::CutAfter {
        suffix,
        bytes,
        times,
    } = &fault
        && path.ends_with(suffix.as_str())
        && *times > 0
    {
        limit = limit.min(*bytes);
        let mut guard = shared.fault.lock().expect("fault lock");
        *guard = if *times > 1 {
            Fault::CutAfter {
                suffix: suffix.clone(),
                bytes: *bytes,
                times: times - 1,
            }
        } else {
            Fault::None
        };
    }
    file.seek(SeekFrom::Start(start))?;
    let rate = *shared.rate.lock().expect("rate lock");
    let began = std::time::Instant::now();
    let mut remaining = limit;
    let mut sent = 0u64;
    // Paced responses go out in 16 KiB pieces so the pacing is smooth.
    let mut buf = vec![
        0u8;
        if rate.is_some() {
            16 * 1024
        } else {
            256 * 1024
        }
    ];
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if let Some(rate) = rate {
            // Not before the link would have carried the bytes sent so far.
            let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(began.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if out.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        remaining -= n as u64;
    }
    let _ = out.flush();
    record(status, sent);
    if limit < body_len {
        let _ = out.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn get(url: &str, range: Option<&str>) -> (String, Vec<u8>) {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = TcpStream::connect(host).unwrap();
        let extra = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
        write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&all[..split]).into_owned(),
            all[split + 4..].to_vec(),
        )
    }

    #[test]
    fn serves_ranges_logs_and_cuts() {
        let dir = crate::tempdir();
        std::fs::write(dir.path().join("f.bin"), b"0123456789").unwrap();
        let server = Server::serve_dir(dir.path());
        let (head, body) = get(&format!("{}f.bin?version=1", server.url()), None);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"0123456789");
        let (head, body) = get(&format!("{}f.bin", server.url()), Some("bytes=4-"));
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        assert_eq!(body, b"456789");
        server.set_fault(Fault::CutAfter {
            suffix: "f.bin".into(),
            bytes: 3,
            times: 1,
        });
        let (_, body) = get(&format!("{}f.bin", server.url()), None);
        assert_eq!(body, b"012");
        let (_, body) = get(&format!("{}f.bin", server.url()), None);
        assert_eq!(body, b"0123456789", "cut applies once");
        let (head, _) = get(&format!("{}missing", server.url()), None);
        assert!(head.starts_with("HTTP/1.1 404"));
        let (head, _) = get(&format!("{}../etc/passwd", server.url()), None);
        assert!(head.starts_with("HTTP/1.1 404"));
        let log = server.requests();
        assert_eq!(log[0].query, "version=1");
        assert_eq!(log[1].range.as_deref(), Some("bytes=4-"));
        assert_eq!(log[2].bytes_sent, 3);
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Some((0, 9)));
        assert_eq!(parse_range("bytes=2-4", 10), Some((2, 4)));
        assert_eq!(parse_range("bytes=2-40", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("items=1-", 10), None);
    }
}

/// A static web server (python's http.server) running as `nobody`, serving `dir`; killed on
/// drop. None (with a SKIP line) when not root or the tools are missing.
#[derive(Debug)]
pub struct NobodyServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl NobodyServer {
    /// Starts the server on a free loopback port (a web server that does not run as root sees
    /// only what is readable by others).
    pub fn start(dir: &Path) -> Option<NobodyServer> {
        use std::io::BufRead;
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let python = Path::new("/usr/bin/python3");
        if !root || !python.exists() || !crate::require_tool("setpriv") {
            crate::skip("needs root, setpriv and /usr/bin/python3");
            return None;
        }
        let mut child = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(python)
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port: u16 = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner {line:?}"));
        Some(NobodyServer {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        })
    }

    /// The HTTP status of GET `path`.
    pub fn status(&self, path: &str) -> u16 {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
    }
}

impl Drop for NobodyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
