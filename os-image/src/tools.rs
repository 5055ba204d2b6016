//! Every external command this crate runs, in one place.
//!
//! Each wrapper finds the tool on `PATH` (and the sbin directories), runs it with stdin closed,
//! captures stdout and stderr, and maps failure to a typed error naming the tool, its command
//! line and the tail of its stderr. A missing tool is reported with the Debian package that
//! provides it. Tools used: `mkfs.ext4`, `debugfs`, `resize2fs`, `dumpe2fs` (e2fsprogs),
//! `mkfs.erofs`, `fsck.erofs` (erofs-utils), `lz4` (lz4).

use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt, ensure};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An external tool and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// Executable name.
    pub name: &'static str,
    /// Debian package providing it.
    pub package: &'static str,
}

/// `mkfs.ext4`.
pub const MKFS_EXT4: Tool = Tool {
    name: "mkfs.ext4",
    package: "e2fsprogs",
};
/// `debugfs`.
pub const DEBUGFS: Tool = Tool {
    name: "debugfs",
    package: "e2fsprogs",
};
/// `resize2fs`.
pub const RESIZE2FS: Tool = Tool {
    name: "resize2fs",
    package: "e2fsprogs",
};
/// `dumpe2fs`.
pub const DUMPE2FS: Tool = Tool {
    name: "dumpe2fs",
    package: "e2fsprogs",
};
/// `mkfs.erofs`.
pub const MKFS_EROFS: Tool = Tool {
    name: "mkfs.erofs",
    package: "erofs-utils",
};
/// `fsck.erofs`.
pub const FSCK_EROFS: Tool = Tool {
    name: "fsck.erofs",
    package: "erofs-utils",
};
/// `lz4`.
pub const LZ4: Tool = Tool {
    name: "lz4",
    package: "lz4",
};

/// `mkfs.vfat` (EFI system partition, with `--bootloader`).
pub const MKFS_VFAT: Tool = Tool {
    name: "mkfs.vfat",
    package: "dosfstools",
};
/// `mmd` (directories on the EFI system partition).
pub const MMD: Tool = Tool {
    name: "mmd",
    package: "mtools",
};
/// `mcopy` (files onto the EFI system partition).
pub const MCOPY: Tool = Tool {
    name: "mcopy",
    package: "mtools",
};

/// Tools installing the bootloader needs (`--bootloader`).
pub fn required_for_bootloader() -> Vec<Tool> {
    vec![MKFS_VFAT, MMD, MCOPY]
}

/// A FAT filesystem image of `bytes` bytes (`mkfs.vfat -S 512`, as Bottlerocket's EFI
/// partition) holding `files` (path inside, source), directories created as needed. Timestamps
/// come from `epoch` (`SOURCE_DATE_EPOCH`, mtools' `-m` on sources stamped with it).
pub fn make_fat(
    image: &Path,
    bytes: u64,
    label: &str,
    volume_id: u32,
    files: &[(&str, &Path)],
    epoch: i64,
) -> Result<()> {
    let f = std::fs::File::create(image).context(error::CreateFileSnafu { path: image })?;
    f.set_len(bytes)
        .context(error::WriteFileSnafu { path: image })?;
    drop(f);
    let env = [("SOURCE_DATE_EPOCH", epoch.to_string())];
    run(
        MKFS_VFAT,
        &[
            os("-S"),
            os("512"),
            os("--invariant"),
            os("-i"),
            os(format!("{volume_id:08x}")),
            os("-n"),
            os(label),
            image.as_os_str().to_owned(),
        ],
        &env,
    )?;
    let mut dirs: Vec<String> = Vec::new();
    for (inside, _) in files {
        let mut acc = String::new();
        let parts: Vec<&str> = inside.split('/').filter(|p| !p.is_empty()).collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            acc.push('/');
            acc.push_str(part);
            if !dirs.contains(&acc) {
                dirs.push(acc.clone());
            }
        }
    }
    for dir in &dirs {
        run(
            MMD,
            &[
                os("-i"),
                image.as_os_str().to_owned(),
                os(format!("::{dir}")),
            ],
            &env,
        )?;
    }
    for (inside, source) in files {
        run(
            MCOPY,
            &[
                os("-m"),
                os("-i"),
                image.as_os_str().to_owned(),
                source.as_os_str().to_owned(),
                os(format!("::{inside}")),
            ],
            &env,
        )?;
    }
    Ok(())
}

/// Tools a build with this root filesystem type needs.
pub fn required_for_build(erofs: bool) -> Vec<Tool> {
    let mut tools = vec![MKFS_EXT4, DEBUGFS, RESIZE2FS, DUMPE2FS, LZ4];
    if erofs {
        tools.push(MKFS_EROFS);
    }
    tools
}

/// Fails with [`crate::Error::ToolMissing`] for the first tool not installed.
pub fn check_installed(tools: &[Tool]) -> Result<()> {
    for tool in tools {
        find(*tool)?;
    }
    Ok(())
}

/// Full path of a tool.
pub fn find(tool: Tool) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(tool.name))
        .find(|c| is_executable(c))
        .context(error::ToolMissingSnafu {
            tool: tool.name,
            package: tool.package,
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a tool; returns its output if it exited 0.
fn run(tool: Tool, args: &[OsString], env: &[(&str, String)]) -> Result<Output> {
    let program = find(tool)?;
    let command_line = std::iter::once(tool.name.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(command = %command_line, "running");
    let mut cmd = Command::new(&program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Locale-independent messages: we match on some of them.
    cmd.env("LC_ALL", "C");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd
        .output()
        .context(error::ToolSpawnSnafu { tool: tool.name })?;
    if !output.status.success() {
        return error::ToolFailedSnafu {
            tool: tool.name,
            command: command_line,
            status: output.status.code().map_or_else(
                || "killed by a signal".to_string(),
                |c| format!("exit status {c}"),
            ),
            stderr: stderr_tail(&output.stderr),
        }
        .fail();
    }
    Ok(output)
}

/// The last few meaningful lines of a tool's stderr.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

fn fake_time_env(epoch: i64) -> Vec<(&'static str, String)> {
    vec![
        ("E2FSPROGS_FAKE_TIME", epoch.to_string()),
        ("SOURCE_DATE_EPOCH", epoch.to_string()),
    ]
}

/// How to make an ext4 filesystem.
#[derive(Debug, Clone)]
pub struct Ext4Options<'a> {
    /// Largest size the filesystem may have (its partition).
    pub max_bytes: u64,
    /// Directory to copy in (`mkfs.ext4 -d`).
    pub source: &'a Path,
    /// Filesystem UUID (also used as the directory hash seed).
    pub uuid: String,
    /// Fixed time for every timestamp mkfs writes.
    pub epoch: i64,
    /// Bottlerocket's EBS-friendly stride/stripe width (root filesystem).
    pub stripe: bool,
    /// What the filesystem is, for errors ("root filesystem").
    pub what: &'static str,
}

/// `mkfs.ext4 -d`: 4 KiB blocks, no journal, fixed UUID/hash seed/time, at `max_bytes`.
///
/// A source that does not fit gives [`crate::Error::ContentTooBig`].
pub fn mkfs_ext4(image: &Path, options: &Ext4Options<'_>) -> Result<()> {
    let file = std::fs::File::create(image).context(error::CreateFileSnafu { path: image })?;
    file.set_len(options.max_bytes)
        .context(error::CreateFileSnafu { path: image })?;
    drop(file);
    let mut extended = "lazy_itable_init=0,root_owner=0:0,nodiscard".to_string();
    if options.stripe {
        extended.push_str(",stride=1024,stripe_width=1024");
    }
    extended.push_str(&format!(",hash_seed={}", options.uuid));
    let args = vec![
        os("-q"),
        os("-F"),
        os("-t"),
        os("ext4"),
        os("-b"),
        os("4096"),
        os("-O"),
        os("^has_journal"),
        os("-E"),
        os(extended),
        os("-U"),
        os(&options.uuid),
        os("-d"),
        options.source.as_os_str().to_owned(),
        image.as_os_str().to_owned(),
        os(format!("{}k", options.max_bytes / 1024)),
    ];
    match run(MKFS_EXT4, &args, &fake_time_env(options.epoch)) {
        Err(crate::Error::ToolFailed { stderr, .. })
            if stderr.contains("Could not allocate") || stderr.contains("No space left") =>
        {
            error::ContentTooBigSnafu {
                what: options.what,
                source_dir: options.source,
                max_bytes: options.max_bytes,
            }
            .fail()
        }
        other => other.map(|_| ()),
    }
}

/// Runs a `debugfs -w` command file on an ext4 image (at offset 0).
///
/// debugfs reports most command errors on stderr but still exits 0, so any stderr line other
/// than its version banner is treated as a failure.
pub fn debugfs_write(image: &Path, commands: &str, epoch: i64) -> Result<()> {
    let mut cmdfile = tempfile::NamedTempFile::new().context(error::CreateTempSnafu)?;
    std::io::Write::write_all(&mut cmdfile, commands.as_bytes()).context(error::CreateTempSnafu)?;
    let args = vec![
        os("-w"),
        os("-f"),
        cmdfile.path().as_os_str().to_owned(),
        image.as_os_str().to_owned(),
    ];
    let out = run(DEBUGFS, &args, &fake_time_env(epoch))?;
    let problems: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .map(str::to_string)
        .collect();
    ensure!(
        problems.is_empty(),
        error::ToolFailedSnafu {
            tool: DEBUGFS.name,
            command: format!("debugfs -w -f <commands> {}", image.display()),
            status: "reported errors".to_string(),
            stderr: problems.into_iter().take(4).collect::<Vec<_>>().join(" | "),
        }
    );
    Ok(())
}

/// `resize2fs -M`: shrinks the filesystem in `image` to its minimum; the file is truncated to
/// the new size, which is returned.
pub fn resize2fs_minimum(image: &Path, epoch: i64) -> Result<u64> {
    run(
        RESIZE2FS,
        &[os("-f"), os("-M"), image.as_os_str().to_owned()],
        &fake_time_env(epoch),
    )?;
    let bytes = ext4_size(image)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .context(error::OpenFileSnafu { path: image })?;
    file.set_len(bytes)
        .context(error::WriteFileSnafu { path: image })?;
    Ok(bytes)
}

/// Size in bytes of the ext4 filesystem in `image` (`dumpe2fs -h`: block count × block size).
pub fn ext4_size(image: &Path) -> Result<u64> {
    let out = run(DUMPE2FS, &[os("-h"), image.as_os_str().to_owned()], &[])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    let count = field("Block count:");
    let size = field("Block size:");
    match (count, size) {
        (Some(c), Some(s)) => Ok(c * s),
        _ => error::ToolOutputSnafu {
            tool: DUMPE2FS.name,
            what: "block count and block size",
        }
        .fail(),
    }
}

/// Copies `fs_path` out of the ext4 filesystem starting at byte `offset` of `image` into
/// `dest` (`debugfs -R dump`, reading the image in place). A missing file gives
/// [`crate::Error::FileNotInImage`].
pub fn debugfs_dump(image: &Path, offset: u64, fs_path: &str, dest: &Path) -> Result<()> {
    ensure!(
        !fs_path.contains('"') && !fs_path.contains('\n'),
        error::FileNotInImageSnafu {
            image,
            offset,
            path: fs_path
        }
    );
    let spec = format!("{}?offset={offset}", image.display());
    let request = format!("dump \"{fs_path}\" \"{}\"", dest.display());
    let _ = std::fs::remove_file(dest);
    run(DEBUGFS, &[os("-R"), os(request), os(spec)], &[])?;
    ensure!(
        dest.exists(),
        error::FileNotInImageSnafu {
            image,
            offset,
            path: fs_path
        }
    );
    Ok(())
}

/// How to make an erofs filesystem (Bottlerocket: lz4hc level 12, 256 KiB physical clusters).
#[derive(Debug, Clone)]
pub struct ErofsOptions<'a> {
    /// Directory to pack.
    pub source: &'a Path,
    /// Filesystem UUID.
    pub uuid: String,
    /// Timestamp of every file.
    pub epoch: i64,
}

/// `mkfs.erofs -zlz4hc,12 -C262144 --all-root -T<epoch> -U<uuid>`.
pub fn mkfs_erofs(image: &Path, options: &ErofsOptions<'_>) -> Result<()> {
    let args = vec![
        os("--quiet"),
        os("-zlz4hc,12"),
        os("-C262144"),
        os("--all-root"),
        os(format!("-T{}", options.epoch)),
        os(format!("-U{}", options.uuid)),
        image.as_os_str().to_owned(),
        options.source.as_os_str().to_owned(),
    ];
    run(
        MKFS_EROFS,
        &args,
        &[("SOURCE_DATE_EPOCH", options.epoch.to_string())],
    )
    .map(|_| ())
}

/// `fsck.erofs --extract=DEST IMAGE`: checks every file and extracts the tree.
pub fn erofs_extract(image: &Path, dest: &Path) -> Result<()> {
    let mut arg = OsString::from("--extract=");
    arg.push(dest);
    run(
        FSCK_EROFS,
        &[arg, os("--no-preserve"), image.as_os_str().to_owned()],
        &[],
    )
    .map(|_| ())
}

/// `lz4 -9`: LZ4 frame format, as Bottlerocket compresses its update images.
pub fn lz4_compress(input: &Path, output: &Path) -> Result<()> {
    run(
        LZ4,
        &[
            os("-9"),
            os("-q"),
            os("-f"),
            input.as_os_str().to_owned(),
            output.as_os_str().to_owned(),
        ],
        &[],
    )
    .map(|_| ())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn missing_tool_names_the_package() {
        let err = find(Tool {
            name: "no-such-tool-os-image",
            package: "some-package",
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing tool `no-such-tool-os-image` (install the Debian package `some-package`)"
        );
    }

    #[test]
    fn failure_carries_command_and_stderr() {
        let sh = Tool {
            name: "sh",
            package: "dash",
        };
        let err = run(
            sh,
            &[os("-c"), os("echo first >&2; echo oops >&2; exit 3")],
            &[],
        )
        .unwrap_err();
        match err {
            crate::Error::ToolFailed {
                tool,
                command,
                stderr,
                status,
            } => {
                assert_eq!(tool, "sh");
                assert_eq!(command, "sh -c echo first >&2; echo oops >&2; exit 3");
                assert_eq!(stderr, "first | oops");
                assert_eq!(status, "exit status 3");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn stderr_tail_keeps_last_lines() {
        assert_eq!(stderr_tail(b"a\n\nb\nc\nd\ne\n"), "b | c | d | e");
    }
}
