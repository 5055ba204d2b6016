//! The root filesystem: stage the input tree (directory or tar), install os-release, `root.json`
//! and `updog.toml`, and pack it as ext4 (shrunk to its content) or erofs — reproducibly.
//!
//! Reproducibility: the filesystem UUID and directory hash seed come from the caller (derived
//! from the build inputs), mkfs runs with `E2FSPROGS_FAKE_TIME`, and every inode's
//! atime/ctime/mtime/crtime is set to the build epoch (`SOURCE_DATE_EPOCH`) with debugfs, because
//! `mkfs.ext4 -d` copies the staging tree's ctimes, which cannot be set from user space.

use crate::error::{self, Result};
use crate::identity::Identity;
use crate::tools;
use serde::Serialize;
use snafu::{ResultExt, ensure};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use update_metadata::os_release::quote;

/// Where `root.json` goes in the root filesystem.
pub const ROOT_JSON_PATH: &str = "usr/share/updog/root.json";
/// Where `updog.toml` goes in the root filesystem.
pub const UPDOG_TOML_PATH: &str = "etc/updog.toml";
/// os-release in the root filesystem (always a regular file in our images).
pub const OS_RELEASE_PATH: &str = "etc/os-release";

/// The input root filesystem tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// A directory, copied (never modified).
    Dir(PathBuf),
    /// An uncompressed tar archive, extracted.
    Tar(PathBuf),
}

impl RootfsSource {
    /// A directory becomes [`RootfsSource::Dir`], a file [`RootfsSource::Tar`].
    pub fn from_path(path: &Path) -> Result<RootfsSource> {
        let meta = std::fs::metadata(path).context(error::RootfsSourceSnafu { path })?;
        Ok(if meta.is_dir() {
            RootfsSource::Dir(path.into())
        } else {
            RootfsSource::Tar(path.into())
        })
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        match self {
            RootfsSource::Dir(p) | RootfsSource::Tar(p) => p,
        }
    }
}

/// Root filesystem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext4, 4 KiB blocks, no journal, shrunk with `resize2fs -M` (Bottlerocket's default).
    #[default]
    Ext4,
    /// erofs, lz4hc level 12, 256 KiB physical clusters.
    Erofs,
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsKind::Ext4 => "ext4",
            FsKind::Erofs => "erofs",
        })
    }
}

impl FromStr for FsKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ext4" => Ok(FsKind::Ext4),
            "erofs" => Ok(FsKind::Erofs),
            _ => Err(format!(
                "'{s}' is not a root filesystem type (expected ext4 or erofs)"
            )),
        }
    }
}

/// Files to install into the tree.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// TUF trusted root, installed at `/usr/share/updog/root.json` (must be JSON).
    pub root_json: Option<PathBuf>,
    /// updog configuration, installed at `/etc/updog.toml` (must be a file updog accepts).
    pub updog_toml: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// os-release

/// The os-release fields this tool sets (fact sheet §4.2 step 5), in order.
pub fn os_release_fields(id: &Identity) -> Vec<(&'static str, String)> {
    vec![
        ("VERSION", format!("{} ({})", id.version, id.variant)),
        (
            "PRETTY_NAME",
            format!("{} OS {} ({})", id.pretty_os_name(), id.version, id.variant),
        ),
        ("VARIANT_ID", id.variant.to_string()),
        ("VERSION_ID", id.version.to_string()),
        ("BUILD_ID", id.build_id.to_string()),
    ]
}

/// os-release text: the lines of `existing` whose keys we do not set (NAME and ID are added
/// when missing), then our fields.
pub fn render_os_release(existing: Option<&str>, id: &Identity) -> String {
    let ours = os_release_fields(id);
    let mut out = String::new();
    let mut have = BTreeMap::new();
    for line in existing.unwrap_or_default().lines() {
        let key = line.split_once('=').map(|(k, _)| k.trim());
        if let Some(k) = key {
            if ours.iter().any(|(o, _)| *o == k) {
                continue;
            }
            have.insert(k.to_string(), ());
        }
        out.push_str(line);
        out.push('\n');
    }
    if !have.contains_key("NAME") {
        out.push_str(&format!("NAME={}\n", quote(&id.pretty_os_name())));
    }
    if !have.contains_key("ID") {
        out.push_str(&format!("ID={}\n", quote(id.name.as_str())));
    }
    for (k, v) in ours {
        out.push_str(&format!("{k}={}\n", quote(&v)));
    }
    out
}

/// Parses os-release text (update-metadata's one parser, the inverse of the writer here).
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    update_metadata::os_release::parse(text)
}

// ---------------------------------------------------------------------------------------------
// staging

/// Builds the staged tree at `dest` (which must not exist): copy or extract the input, install
/// the extras, write os-release.
pub fn stage(source: &RootfsSource, dest: &Path, id: &Identity, extras: &Extras) -> Result<()> {
    match source {
        RootfsSource::Dir(dir) => {
            let meta =
                std::fs::symlink_metadata(dir).context(error::RootfsSourceSnafu { path: dir })?;
            std::fs::create_dir(dest).context(error::CreateDirSnafu { path: dest })?;
            let mut links = HashMap::new();
            copy_tree(dir, dest, &mut links)?;
            // Like every directory: owner and mode after its content is written.
            copy_metadata(&meta, dest)?;
        }
        RootfsSource::Tar(tar_path) => {
            std::fs::create_dir(dest).context(error::CreateDirSnafu { path: dest })?;
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
                .context(error::WriteFileSnafu { path: dest })?;
            extract_tar(tar_path, dest)?;
        }
    }
    install_extras(dest, extras)?;
    write_os_release(dest, id)
}

fn running_as_root() -> bool {
    // /proc/self is owned by the effective uid of the process.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn copy_metadata(meta: &std::fs::Metadata, dest: &Path) -> Result<()> {
    // Owner first: chown clears the setuid/setgid bits.
    if running_as_root() {
        std::os::unix::fs::lchown(dest, Some(meta.uid()), Some(meta.gid()))
            .context(error::WriteFileSnafu { path: dest })?;
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .context(error::WriteFileSnafu { path: dest })
}

fn copy_tree(src: &Path, dest: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .context(error::ReadDirSnafu { path: src })?
        .collect::<std::io::Result<_>>()
        .context(error::ReadDirSnafu { path: src })?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta =
            std::fs::symlink_metadata(&from).context(error::ReadFileSnafu { path: &from })?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).context(error::ReadFileSnafu { path: &from })?;
            std::os::unix::fs::symlink(&target, &to)
                .context(error::WriteFileSnafu { path: &to })?;
            if running_as_root() {
                std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))
                    .context(error::WriteFileSnafu { path: &to })?;
            }
        } else if ft.is_dir() {
            std::fs::create_dir(&to).context(error::CreateDirSnafu { path: &to })?;
            copy_tree(&from, &to, links)?;
            copy_metadata(&meta, &to)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    std::fs::hard_link(first, &to).context(error::WriteFileSnafu { path: &to })?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), to.clone());
            }
            std::fs::copy(&from, &to).context(error::CopyFileSnafu {
                from: &from,
                to: &to,
            })?;
            copy_metadata(&meta, &to)?;
        } else {
            return error::UnsupportedFileSnafu { path: from }.fail();
        }
    }
    Ok(())
}

fn extract_tar(tar_path: &Path, dest: &Path) -> Result<()> {
    let file =
        std::fs::File::open(tar_path).context(error::RootfsSourceSnafu { path: tar_path })?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(running_as_root());
    archive.set_preserve_mtime(false);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive
        .unpack(dest)
        .context(error::ExtractTarSnafu { path: tar_path })
}

fn install_extras(dest: &Path, extras: &Extras) -> Result<()> {
    if let Some(path) = &extras.root_json {
        let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .context(error::InvalidRootJsonSnafu { path })?;
        install_file(dest, ROOT_JSON_PATH, &bytes)?;
    }
    if let Some(path) = &extras.updog_toml {
        let bytes = read_updog_toml(path)?;
        install_file(dest, UPDOG_TOML_PATH, &bytes)?;
    }
    Ok(())
}

/// Reads `--updog-toml` and checks it with updog's own parser (unknown keys, URL schemes,
/// ranges), so an image never carries a file its hosts cannot use.
pub fn read_updog_toml(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
    updog_config::Config::from_slice(&bytes, path)
        .context(error::InvalidUpdogTomlSnafu { path })?;
    Ok(bytes)
}

impl Extras {
    /// Checks the files to install before anything is built.
    pub fn check(&self) -> Result<()> {
        if let Some(path) = &self.updog_toml {
            read_updog_toml(path)?;
        }
        Ok(())
    }
}

/// Writes `bytes` at `rel` inside the tree as a regular 0644 file, replacing a symlink there and
/// creating parent directories (0755).
fn install_file(root: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        ensure!(
            !std::fs::symlink_metadata(parent).is_ok_and(|m| m.file_type().is_symlink()),
            error::UnsupportedFileSnafu { path: parent }
        );
        std::fs::create_dir_all(parent).context(error::CreateDirSnafu { path: parent })?;
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path).context(error::WriteFileSnafu { path: &path })?;
    }
    std::fs::write(&path, bytes).context(error::WriteFileSnafu { path: &path })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .context(error::WriteFileSnafu { path: &path })
}

fn write_os_release(root: &Path, id: &Identity) -> Result<()> {
    // Start from the tree's own os-release (following a symlink inside the tree), if any.
    let etc = root.join(OS_RELEASE_PATH);
    let usr = root.join("usr/lib/os-release");
    let existing = std::fs::read_to_string(&usr).ok().or_else(|| {
        std::fs::symlink_metadata(&etc)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|_| std::fs::read_to_string(&etc).ok())
    });
    let text = render_os_release(existing.as_deref(), id);
    install_file(root, OS_RELEASE_PATH, text.as_bytes())?;
    if std::fs::symlink_metadata(&usr).is_ok_and(|m| m.is_file()) {
        install_file(root, "usr/lib/os-release", text.as_bytes())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// packing

/// Every path in the tree as debugfs sees it (`/`, `/etc`, …), sorted.
fn tree_paths(root: &Path) -> Result<Vec<String>> {
    let mut out = vec!["/".to_string()];
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).context(error::ReadDirSnafu { path: &dir })? {
            let entry = entry.context(error::ReadDirSnafu { path: &dir })?;
            let name = entry.file_name();
            let Some(name) = name
                .to_str()
                .filter(|n| !n.contains('"') && !n.contains('\n'))
            else {
                return error::UnsupportedPathSnafu { path: entry.path() }.fail();
            };
            let rel = format!("{prefix}/{name}");
            if entry
                .file_type()
                .context(error::ReadDirSnafu { path: &dir })?
                .is_dir()
            {
                stack.push((entry.path(), rel.clone()));
            }
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// What an ext4 image is for (named in errors).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ext4Purpose {
    pub(crate) what: &'static str,
    pub(crate) stripe: bool,
}

/// Packs `tree` as ext4 into `image`: at most `max_bytes`, timestamps fixed, shrunk to its
/// content. Returns the image size.
pub(crate) fn make_ext4(
    tree: &Path,
    image: &Path,
    max_bytes: u64,
    uuid: &str,
    epoch: i64,
    purpose: Ext4Purpose,
) -> Result<u64> {
    let options = tools::Ext4Options {
        max_bytes,
        source: tree,
        uuid: uuid.to_string(),
        epoch,
        stripe: purpose.stripe,
        what: purpose.what,
    };
    tools::mkfs_ext4(image, &options)?;
    let mut commands = String::new();
    for path in tree_paths(tree)? {
        for field in ["atime", "ctime", "mtime", "crtime"] {
            commands.push_str(&format!(
                "sif \"{path}\" {field} @{epoch}\nsif \"{path}\" {field}_extra 0\n"
            ));
        }
    }
    tools::debugfs_write(image, &commands, epoch)?;
    tools::resize2fs_minimum(image, epoch)
}

/// Packs the staged tree as the root filesystem. Returns the image size (a multiple of 4096).
pub fn make_root_image(
    tree: &Path,
    kind: FsKind,
    image: &Path,
    max_bytes: u64,
    uuid: &str,
    epoch: i64,
) -> Result<u64> {
    match kind {
        FsKind::Ext4 => make_ext4(
            tree,
            image,
            max_bytes,
            uuid,
            epoch,
            Ext4Purpose {
                what: "root filesystem",
                stripe: true,
            },
        ),
        FsKind::Erofs => {
            tools::mkfs_erofs(
                image,
                &tools::ErofsOptions {
                    source: tree,
                    uuid: uuid.to_string(),
                    epoch,
                },
            )?;
            let len = std::fs::metadata(image)
                .context(error::ReadFileSnafu { path: image })?
                .len();
            let padded = len.div_ceil(4096) * 4096;
            ensure!(
                padded <= max_bytes,
                error::ContentTooBigSnafu {
                    what: "root filesystem",
                    source_dir: tree,
                    max_bytes
                }
            );
            if padded != len {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(image)
                    .context(error::OpenFileSnafu { path: image })?;
                f.set_len(padded)
                    .context(error::WriteFileSnafu { path: image })?;
            }
            Ok(padded)
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::identity::ImageName;

    fn identity() -> Identity {
        Identity {
            name: ImageName::default(),
            variant: "aws-dev".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: "1.2.3".parse().unwrap(),
            build_id: "abc123".parse().unwrap(),
        }
    }

    #[test]
    fn os_release_round_trip() {
        let existing =
            "NAME=Thing\nID=thing\nVERSION_ID=0.0.1\n# comment\nHOME_URL=\"https://x\"\n";
        let text = render_os_release(Some(existing), &identity());
        let map = parse_os_release(&text);
        assert_eq!(map["NAME"], "Thing");
        assert_eq!(map["ID"], "thing");
        assert_eq!(map["VERSION_ID"], "1.2.3");
        assert_eq!(map["VARIANT_ID"], "aws-dev");
        assert_eq!(map["BUILD_ID"], "abc123");
        assert_eq!(map["VERSION"], "1.2.3 (aws-dev)");
        assert_eq!(map["PRETTY_NAME"], "Bottlerocket OS 1.2.3 (aws-dev)");
        assert_eq!(map["HOME_URL"], "https://x");
        assert_eq!(text.matches("VERSION_ID=").count(), 1);
        let fresh = parse_os_release(&render_os_release(None, &identity()));
        assert_eq!(fresh["NAME"], "Bottlerocket");
        assert_eq!(fresh["ID"], "bottlerocket");
    }

    #[test]
    fn quoting_escapes_shell_characters() {
        assert_eq!(quote("1.2.3"), "1.2.3");
        assert_eq!(quote("a \"b\" $c"), "\"a \\\"b\\\" \\$c\"");
        let map = parse_os_release(&format!("X={}\n", quote("a \"b\" $c")));
        assert_eq!(map["X"], "a \"b\" $c");
    }

    #[test]
    fn staging_copies_and_installs() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("etc")).unwrap();
        std::fs::create_dir_all(src.join("usr/bin")).unwrap();
        std::fs::write(src.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::hard_link(src.join("usr/bin/tool"), src.join("usr/bin/tool2")).unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", src.join("etc/os-release")).unwrap();
        std::fs::create_dir_all(src.join("usr/lib")).unwrap();
        std::fs::write(src.join("usr/lib/os-release"), "NAME=Base\n").unwrap();
        let root_json = dir.path().join("root.json");
        std::fs::write(&root_json, b"{\"signed\":{}}").unwrap();
        let toml_path = dir.path().join("updog.toml");
        std::fs::write(
            &toml_path,
            b"metadata_base_url = \"file:///r/metadata/\"\ntargets_base_url = \"file:///r/targets/\"\nseed = 42\n",
        )
        .unwrap();
        let dest = dir.path().join("stage");
        let extras = Extras {
            root_json: Some(root_json.clone()),
            updog_toml: Some(toml_path),
        };
        stage(&RootfsSource::Dir(src.clone()), &dest, &identity(), &extras).unwrap();
        let meta = std::fs::metadata(dest.join("usr/bin/tool")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o4755);
        assert_eq!(meta.nlink(), 2);
        assert_eq!(
            std::fs::read(dest.join(ROOT_JSON_PATH)).unwrap(),
            b"{\"signed\":{}}"
        );
        assert!(
            std::fs::symlink_metadata(dest.join("etc/os-release"))
                .unwrap()
                .is_file()
        );
        let etc = parse_os_release(&std::fs::read_to_string(dest.join("etc/os-release")).unwrap());
        let usr =
            parse_os_release(&std::fs::read_to_string(dest.join("usr/lib/os-release")).unwrap());
        assert_eq!(etc, usr);
        assert_eq!(etc["NAME"], "Base");
        assert_eq!(etc["VERSION_ID"], "1.2.3");
        // The input is untouched.
        assert!(
            std::fs::symlink_metadata(src.join("etc/os-release"))
                .unwrap()
                .file_type()
                .is_symlink()
        );

        // Bad extras are refused with the file named.
        std::fs::write(&root_json, b"not json").unwrap();
        let extras = Extras {
            root_json: Some(root_json.clone()),
            updog_toml: None,
        };
        let err = stage(
            &RootfsSource::Dir(src),
            &dir.path().join("stage2"),
            &identity(),
            &extras,
        )
        .unwrap_err();
        assert!(
            matches!(err, crate::Error::InvalidRootJson { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn staging_from_tar() {
        let dir = tempfile::tempdir().unwrap();
        let tar_path = dir.path().join("root.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "bin/hello", &b"hello"[..])
            .unwrap();
        builder.finish().unwrap();
        drop(builder);
        let dest = dir.path().join("stage");
        stage(
            &RootfsSource::from_path(&tar_path).unwrap(),
            &dest,
            &identity(),
            &Extras::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read(dest.join("bin/hello")).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(dest.join("bin/hello")).unwrap().mode() & 0o777,
            0o755
        );
        assert!(dest.join(OS_RELEASE_PATH).is_file());

        std::fs::write(&tar_path, [b'x'; 1024]).unwrap();
        let err = stage(
            &RootfsSource::Tar(tar_path),
            &dir.path().join("s2"),
            &identity(),
            &Extras::default(),
        )
        .unwrap_err();
        assert!(matches!(err, crate::Error::ExtractTar { .. }), "{err:?}");
    }
}
