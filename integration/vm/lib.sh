# Shared helpers for the VM tier scripts (sourced, not run).
# shellcheck shell=bash

ABOS_CACHE=${ABOS_CACHE:-$HOME/.cache/abos}
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Serialise cache writers (two runs at once, e.g. a test and a person): lock held until exit.
cache_lock() {
    mkdir -p "$ABOS_CACHE"
    exec 9> "$ABOS_CACHE/.lock"
    flock 9
}

log() { printf '[vm-tier %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[vm-tier] FAILED: %s\n' "$*" >&2; exit 1; }

# Download a Debian package (version as apt-cache knows it) and unpack it into the cache.
# Prints the directory. Idempotent.
fetch_deb() {
    local pkg=$1 ver dir work
    ver=$(apt-cache show "$pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
    [[ -n $ver ]] || die "package $pkg unknown to apt-cache (run apt-get update?)"
    dir=$ABOS_CACHE/deb-${pkg}_${ver//:/%}
    if [[ ! -f $dir/.complete ]]; then
        mkdir -p "$ABOS_CACHE"
        work=$(mktemp -d "$ABOS_CACHE/.deb-tmp.XXXXXX")
        (cd "$work" && apt-get download -q "$pkg=$ver" >&2) || { rm -rf "$work"; die "apt-get download $pkg=$ver"; }
        mkdir "$work/x"
        dpkg-deb -x "$work"/*.deb "$work/x" || { rm -rf "$work"; die "dpkg-deb -x $pkg"; }
        touch "$work/x/.complete"
        rm -rf "$dir"
        mv "$work/x" "$dir"
        rm -rf "$work"
    fi
    echo "$dir"
}

# Copy an ELF binary and the shared libraries ldd reports for it into DEST (a root directory),
# keeping the libraries' absolute paths. Extra library directories may be given in LD_LIBRARY_PATH.
copy_with_libs() {
    local bin=$1 dest=$2 target=$3 lib
    install -D -m 0755 "$bin" "$dest/$target"
    while read -r lib; do
        [[ -n $lib ]] || continue
        # keep the path the dynamic loader will look for: ld.so by its absolute path, others in /lib
        if [[ $lib == */ld-linux* ]]; then
            install -D -m 0755 "$(readlink -f "$lib")" "$dest$lib"
        else
            install -D -m 0755 "$(readlink -f "$lib")" "$dest/lib/x86_64-linux-gnu/$(basename "$lib")"
        fi
    done < <(ldd "$bin" | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}')
}
