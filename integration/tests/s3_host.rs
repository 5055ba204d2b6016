//! A host updating straight from a bucket: pubsys publishes two real OS builds into
//! `s3://updates/prod` on moto's server (127.0.0.1, S3 API only), and a simulated host's updog
//! reads the repository over plain anonymous HTTP from the bucket's endpoint (path-style:
//! `http://127.0.0.1:PORT/updates/prod/metadata/<variant>/<arch>/`), updates and boots the new
//! release. The bucket has a public-read policy (moto enforces it; s3s-fs has none and refuses
//! anonymous requests, see README "Object storage").

use integration::Bins;
use integration::story::{ARCH, Boot, Quiet, VARIANT, World, policy_file, s};
use test_support::s3::{S3Impl, S3Server};

#[test]
fn host_updates_from_the_buckets_http_endpoint() {
    for tool in ["mkfs.ext4", "debugfs", "sgdisk", "lz4"] {
        if !test_support::require_tool(tool) {
            return;
        }
    }
    let Some(server) = S3Server::start(S3Impl::Moto) else {
        return;
    };
    server.create_bucket("updates");
    let bins = Bins::locate().expect("binaries");
    let dir = test_support::tempdir();
    let narrator = Quiet;
    let world = World::new(dir.path(), bins, &narrator);
    let trust = world.root_of_trust();
    let v100 = world.build_os("1.0.0", &trust);
    let v110 = world.build_os("1.1.0", &trust);
    let policy = policy_file("default");
    for build in [&v100, &v110] {
        let mut cmd = world.bins.cmd("pubsys");
        cmd.args([
            "repo",
            "--root-role-path",
            s(&trust.root),
            "--key",
            s(&trust.key),
            "--repo-dir",
            "s3://updates/prod",
            "--build-description",
            s(&build.description),
            "--wave-policy",
            s(&policy),
            "--release-start-time",
            "2020-01-01T00:00:00Z",
        ]);
        server.apply(&mut cmd);
        world.exec(cmd).ok();
    }

    let base = format!("{}/updates/prod/", server.endpoint());
    let metadata = format!("{base}metadata/{VARIANT}/{ARCH}/");
    let targets = format!("{base}targets/");
    let status = || test_support::s3::anonymous_get_status(&format!("{metadata}timestamp.json"));
    assert_eq!(status(), 403, "a private bucket refuses anonymous GETs");
    server.allow_anonymous_reads("updates");
    assert_eq!(status(), 200, "a public-read bucket policy lets hosts read");
    let mut host = world.make_host("one", &v100, &trust, &metadata, &targets, 1500);
    let update = world.updog(&host, &["update", "--now", "--json"]);
    assert_eq!(update.code, 0, "updog update: {}", update.stderr);
    let boot = world.boot(&mut host);
    assert!(
        matches!(&boot, Boot::Booted { set: 'b', version } if version == "1.1.0"),
        "{boot:?}"
    );
}
