//! Command-line definitions for the `waves` binary (the only place clap is used).
