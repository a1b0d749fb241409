"""Fetch the pinned browser libraries named in a manifest from the npm registry.

The ledger's pages must work offline (no CDN), so their libraries are served by the add-on
itself. They are not kept in git: this script downloads each package's tarball, checks it
against the sha512 ``integrity`` npm publishes, and copies the named files next to the
manifest. It runs in the add-on's Docker build and in ``scripts/setup``; with every file
already present and matching, it downloads nothing. Standard library only (it runs before
any virtual environment exists).

    python3 fetch_web_assets.py MANIFEST.json [MANIFEST.json ...]
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import ssl
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

STAMP = ".integrity"


def _ssl_context() -> ssl.SSLContext:
    """Trust the same extra CA bundle pip is told about (a proxy's), if any."""
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle if bundle and Path(bundle).is_file() else None)


def _download(url: str, integrity: str) -> bytes:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise SystemExit(f"fetch_web_assets: unsupported integrity {integrity[:16]}…")
    if not url.startswith("https://"):
        raise SystemExit(f"fetch_web_assets: {url} is not an https address")
    with urllib.request.urlopen(url, timeout=60, context=_ssl_context()) as response:  # noqa: S310
        data: bytes = response.read()
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"fetch_web_assets: {url} does not match its pinned integrity")
    return data


def fetch(manifest_path: Path) -> list[Path]:
    """Place every package's files; return the files written (none when all were current)."""
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    destination = manifest_path.parent / manifest["destination"]
    destination.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for package in manifest["packages"]:
        stamp = destination / f"{package['name']}{STAMP}"
        targets = [destination / name for name in package["files"].values()]
        current = stamp.is_file() and stamp.read_text(encoding="utf-8") == package["integrity"]
        if current and all(target.is_file() for target in targets):
            continue
        data = _download(package["tarball"], package["integrity"])
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member, name in package["files"].items():
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise SystemExit(
                        f"fetch_web_assets: {member} is not a file in {package['name']}"
                    )
                (destination / name).write_bytes(extracted.read())
                written.append(destination / name)
        stamp.write_text(package["integrity"], encoding="utf-8")
    return written


def main(argv: list[str]) -> int:
    """Fetch every manifest named on the command line."""
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    for path in argv:
        for written in fetch(Path(path).resolve()):
            print(f"fetch_web_assets: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
