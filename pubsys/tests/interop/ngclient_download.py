#!/usr/bin/env python3
"""Read a TUF repository with python-tuf's ngclient (an independent TUF client).

Usage: ngclient_download.py ROOT_JSON METADATA_URL TARGETS_URL WORK_DIR TARGET_NAME...

Bootstraps trust from ROOT_JSON, refreshes top-level metadata, downloads each named target
(ngclient verifies length and hashes) and prints one JSON object on stdout:
{"timestamp_version": N, "targets": {name: sha256-hex, ...}}.
Any verification failure raises, so the exit status is non-zero.

Needs: pip install tuf "securesystemslib[crypto]"
"""

import hashlib
import json
import os
import sys

from tuf.ngclient import Updater


def main() -> int:
    root_path, metadata_url, targets_url, work_dir, *names = sys.argv[1:]
    metadata_dir = os.path.join(work_dir, "metadata")
    target_dir = os.path.join(work_dir, "targets")
    os.makedirs(metadata_dir, exist_ok=True)
    os.makedirs(target_dir, exist_ok=True)
    with open(root_path, "rb") as f:
        root_bytes = f.read()

    updater = Updater(
        metadata_dir=metadata_dir,
        metadata_base_url=metadata_url,
        target_base_url=targets_url,
        target_dir=target_dir,
        bootstrap=root_bytes,
    )
    updater.refresh()

    result = {"timestamp_version": None, "targets": {}}
    ts_path = os.path.join(metadata_dir, "timestamp.json")
    if os.path.exists(ts_path):
        with open(ts_path, "rb") as f:
            result["timestamp_version"] = json.load(f)["signed"]["version"]
    for name in names:
        info = updater.get_targetinfo(name)
        if info is None:
            raise SystemExit(f"target {name!r} is not in the repository")
        path = updater.download_target(info, os.path.join(target_dir, name))
        with open(path, "rb") as f:
            result["targets"][name] = hashlib.sha256(f.read()).hexdigest()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
