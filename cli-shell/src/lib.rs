//! The binaries' shell, owned once for every abos binary (updog, pubsys, repo-tools, os-image,
//! signpost, waves, kernel-config, fleetctl).
//!
//! - [`exit`]: the [`ExitCodes`] trait each binary's `ExitStatus` enum implements (code, name,
//!   meaning) and the table rendered from it into `--help`, man pages and checked against README.
//! - [`error`]: one error renderer: `error:` / `Caused by:` (each cause once: tough's messages
//!   repeat their source's text) / `hint:`, as text or JSON.
//! - `log` (feature `cli`): one `--log-level` type and the tracing set-up (stderr, `NO_COLOR`,
//!   JSON lines with `--json`, never interleaved with a progress bar).
//! - `printer` (feature `cli`): TTY / quiet / verbose / JSON output, progress bars, and stdout
//!   writes that end quietly when the reader went away (`cmd | head -1`).
//! - `docs` (feature `cli`): man pages and completions with one layout.
//!
//! Without the default `cli` feature the crate has no dependencies: libraries that own an
//! `ExitStatus` enum implement [`ExitCodes`] without compiling clap or tracing-subscriber.
//!
//! ```
//! use abos_shell::{ExitCodes, error::Report};
//!
//! #[derive(Clone, Copy)]
//! enum ExitStatus { Success, Usage }
//! impl ExitCodes for ExitStatus {
//!     fn all() -> &'static [Self] { &[ExitStatus::Success, ExitStatus::Usage] }
//!     fn code(self) -> u8 { match self { ExitStatus::Success => 0, ExitStatus::Usage => 2 } }
//!     fn name(self) -> &'static str { match self { ExitStatus::Success => "success", ExitStatus::Usage => "usage" } }
//!     fn meaning(self) -> &'static str { match self { ExitStatus::Success => "success", ExitStatus::Usage => "usage" } }
//! }
//! assert!(abos_shell::exit::help_table::<ExitStatus>().contains("2  usage"));
//! let e = std::io::Error::other("disk on fire");
//! assert_eq!(Report::new(&e, 2).text(), "error: disk on fire\n");
//! ```
#![deny(missing_docs)]

pub mod error;
pub mod exit;

#[cfg(feature = "cli")]
pub mod docs;
#[cfg(feature = "cli")]
pub mod log;
#[cfg(feature = "cli")]
pub mod printer;

pub use exit::ExitCodes;
