//! One `--log-level` type and one tracing set-up for every binary: log lines on stderr, plain
//! (no ANSI) unless stderr is a terminal and `NO_COLOR` is unset, one JSON object per line with
//! `--json`, and never drawn into a progress bar (each line suspends the printer's bars).

use crate::printer::Printer;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The level of log messages shown on stderr (`--log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevel {
    /// No log messages.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Progress notes too.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level name as `--log-level` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// This level raised by `-v` flags: `-v` at least info, `-vv` debug, `-vvv` trace.
    pub fn raised(self, verbose: u8) -> LogLevel {
        let floor = match verbose {
            0 => LogLevel::Off,
            1 => LogLevel::Info,
            2 => LogLevel::Debug,
            _ => LogLevel::Trace,
        };
        self.max(floor)
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which crates the level applies to.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every crate (tough's and reqwest's messages too).
    All,
    /// Only these crates (module path prefixes); everything else stays at `warn`.
    Crates(&'static [&'static str]),
}

/// Installs the global tracing subscriber: `level` for `scope`, on stderr through `printer`
/// (JSON lines when the printer is in JSON mode). When `env_override` names a set environment
/// variable holding a valid filter (e.g. `KERNEL_CONFIG_LOG=debug`), that filter wins.
pub fn init(level: LogLevel, scope: Scope, env_override: Option<&str>, printer: &Printer) {
    let spec = match scope {
        Scope::All => level.as_str().to_owned(),
        Scope::Crates(crates) => {
            let mut s = String::from("warn");
            for c in crates {
                s.push_str(&format!(",{c}={}", level.as_str()));
            }
            s
        }
    };
    let filter = env_override
        .and_then(|var| std::env::var(var).ok())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(spec));
    let writer = StderrLines {
        printer: printer.clone(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_target(false);
    let result = if printer.is_json() {
        builder.with_ansi(false).event_format(JsonLines).try_init()
    } else {
        builder.with_ansi(printer.colour()).try_init()
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    drop(result);
}

/// Hands tracing one buffer per event and writes it to stderr in one piece, with the printer's
/// progress bars suspended so a log line never lands inside a bar.
#[derive(Clone)]
struct StderrLines {
    printer: Printer,
}

impl<'a> MakeWriter<'a> for StderrLines {
    type Writer = EventBuf;
    fn make_writer(&'a self) -> EventBuf {
        EventBuf {
            buf: Vec::new(),
            printer: self.printer.clone(),
        }
    }
}

/// One event's bytes; written on drop.
struct EventBuf {
    buf: Vec<u8>,
    printer: Printer,
}

impl std::io::Write for EventBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuf {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.printer.suspend(|| {
                let _ = std::io::stderr().lock().write_all(&buf);
            });
        }
    }
}

/// Formats an event as one JSON object: `{"level":"warn","message":"…", fields…}`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields(serde_json::Map::new());
        fields.0.insert(
            "level".into(),
            event.metadata().level().as_str().to_lowercase().into(),
        );
        event.record(&mut fields);
        writeln!(writer, "{}", serde_json::Value::Object(fields.0))
    }
}

struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn verbose_raises_never_lowers() {
        assert_eq!(LogLevel::Warn.raised(0), LogLevel::Warn);
        assert_eq!(LogLevel::Warn.raised(1), LogLevel::Info);
        assert_eq!(LogLevel::Warn.raised(2), LogLevel::Debug);
        assert_eq!(LogLevel::Warn.raised(9), LogLevel::Trace);
        assert_eq!(LogLevel::Debug.raised(1), LogLevel::Debug);
    }

    #[test]
    fn json_lines_format() {
        use tracing_subscriber::layer::SubscriberExt as _;
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .with_writer(move || out.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(path = "/x", tries = 3u64, "cannot \"open\"");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["message"], "cannot \"open\"");
        assert_eq!(v["path"], "/x");
        assert_eq!(v["tries"], 3);
        assert_eq!(text.lines().count(), 1);
    }
}
