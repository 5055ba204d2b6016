//! A host simulated by a directory without `--disk`: updog discovers the OS disk and the running
//! set through `<host-root>/sys` and `<host-root>/dev` (signpost's discovery), exactly the code
//! path of a real host. The sysfs tree is fake; its disk node is the real GPT image.

mod common;

use common::*;
use signpost::discovery::DevNum;
use std::os::unix::fs::symlink;
use std::path::Path;
use test_support::http::Server;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `/` is dm-0 (dm-verity) over vda2 + vda3 (ROOT-A, HASH-A): set A runs.
fn fake_sysfs(host_root: &Path, disk_image: &Path) {
    let sys = host_root.join("sys");
    let dev = host_root.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    symlink(disk_image, dev.join("vda")).unwrap();
    let disk = sys.join("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
    write(&disk.join("dev"), "254:0\n");
    for n in 1..=7u32 {
        write(&disk.join(format!("vda{n}/partition")), &format!("{n}\n"));
        write(&disk.join(format!("vda{n}/dev")), &format!("254:{n}\n"));
    }
    let root = DevNum::of_path(Path::new("/")).unwrap();
    std::fs::create_dir_all(sys.join("dev/block")).unwrap();
    let dm0 = sys.join("devices/virtual/block/dm-0");
    write(&dm0.join("dev"), &format!("{root}\n"));
    std::fs::create_dir_all(dm0.join("slaves")).unwrap();
    for n in [ROOT_A, HASH_A] {
        symlink(
            format!("../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda{n}"),
            dm0.join(format!("slaves/vda{n}")),
        )
        .unwrap();
    }
    symlink(
        "../../devices/virtual/block/dm-0",
        sys.join("dev/block").join(root.to_string()),
    )
    .unwrap();
}

#[test]
fn simulated_host_without_disk_option() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", MIB, &[]);
    let new = make_release(&path, "1.1.0", 2 * MIB, &[]);
    repo.publish(
        &manifest(&[&old, &new]),
        &[old.target_files(), new.target_files()].concat(),
        RoleVersions::all(1),
    );
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 4, "");
    fake_sysfs(&host.root, &host.disk);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_updog"))
        .arg("--host-root")
        .arg(&host.root)
        .arg("update")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("set B"),
        "{}",
        show(&out)
    );
    assert!(veritysetup_verify_b(&host.disk, &new, &path));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_updog"))
        .arg("--host-root")
        .arg(&host.root)
        .arg("update-revert")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
}
