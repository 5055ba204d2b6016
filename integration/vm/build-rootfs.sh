#!/usr/bin/env bash
# Populate the guest's root filesystem directory (input of `os-image build --rootfs DIR`).
#
#   build-rootfs.sh --out DIR --updog BIN --signpost BIN \
#                   [--version X.Y.Z --variant V] [--root-json FILE] [--updog-toml FILE]
#                   [--failing-health-check MESSAGE]
#
# Contents: busybox-static with its applets in /bin, guest/init as /sbin/init, our updog and
# signpost binaries in /usr/bin with the shared libraries ldd names (debug info stripped), the
# host's CA bundle, updog's reboot_command /sbin/abos-reboot (guest/abos-reboot), a passing health
# check /etc/updog/health.d/00-network; with --failing-health-check, also
# /etc/updog/health.d/10-fail, which prints MESSAGE and exits 1 (a release that must roll back); and, when given (os-image installs them itself), /usr/share/updog/root.json,
# /etc/updog.toml and /etc/os-release.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out= version= variant= updog= signpost= root_json= updog_toml= failing_check=
while [[ $# -gt 0 ]]; do
    case $1 in
    --out) out=$2 ;;
    --version) version=$2 ;;
    --variant) variant=$2 ;;
    --updog) updog=$2 ;;
    --signpost) signpost=$2 ;;
    --root-json) root_json=$2 ;;
    --updog-toml) updog_toml=$2 ;;
    --failing-health-check) failing_check=$2 ;;
    *) die "build-rootfs: unknown argument $1" ;;
    esac
    shift 2
done
for v in out updog signpost; do
    [[ -n ${!v} ]] || die "build-rootfs: --${v//_/-} is required"
done

rm -rf "$out"
mkdir -p "$out"/{bin,sbin,usr/bin,usr/sbin,usr/share/updog,etc,proc,sys,dev,tmp,run,var,lib64,lib/x86_64-linux-gnu}
busybox=$(command -v busybox)
install -m 0755 "$busybox" "$out/bin/busybox"
for a in $("$busybox" --list); do
    [[ $a == busybox || $a == init ]] || ln -sf busybox "$out/bin/$a"
done
install -m 0755 "$VM_DIR/guest/init" "$out/sbin/init"
install -m 0755 "$VM_DIR/guest/abos-reboot" "$out/sbin/abos-reboot"
mkdir -p "$out/etc/updog/health.d"
cat > "$out/etc/updog/health.d/00-network" <<'SH'
#!/bin/sh
# the guest reaches the repository's host through its default route
ip route | grep -q '^default via 10.0.2.2' || { echo "no default route via 10.0.2.2"; exit 1; }
SH
chmod 0755 "$out/etc/updog/health.d/00-network"
if [[ -n $failing_check ]]; then
    printf '#!/bin/sh\necho %q\nexit 1\n' "$failing_check" > "$out/etc/updog/health.d/10-fail"
    chmod 0755 "$out/etc/updog/health.d/10-fail"
fi
for b in "$updog" "$signpost"; do
    name=$(basename "$b")
    copy_with_libs "$b" "$out" "/usr/bin/$name"
    strip --strip-debug "$out/usr/bin/$name"
done
[[ -z $root_json ]] || install -m 0644 "$root_json" "$out/usr/share/updog/root.json"
[[ -z $updog_toml ]] || install -m 0644 "$updog_toml" "$out/etc/updog.toml"
# CA bundle where Bottlerocket has it and where rustls' platform verifier looks (updog's HTTP client
# refuses to start without one, even for http:// repositories)
ca=/etc/ssl/certs/ca-certificates.crt
[[ -f $ca ]] || die "no CA bundle at $ca (apt-get install ca-certificates)"
install -D -m 0644 "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
install -D -m 0644 "$ca" "$out/etc/pki/tls/certs/ca-bundle.crt"
[[ -n $version ]] || exit 0
cat > "$out/etc/os-release" <<OSR
NAME=ABOS
ID=abos
VERSION="$version ($variant)"
PRETTY_NAME="ABOS $version ($variant)"
VARIANT_ID=$variant
VERSION_ID=$version
BUILD_ID=vmtier
OSR
