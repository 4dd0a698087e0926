"""Vendor MathJax 3 into ``docs/javascripts/vendor/mathjax/`` so the site's math renders offline.

Run by ``make docs`` before ``mkdocs build`` (``python docs/tools/vendor_mathjax.py``). It fetches
the ``mathjax`` tarball from the npm registry with ``npm pack`` (Node and npm are the only
requirements; nothing is installed, no ``node_modules``), checks it against the pinned sha512
integrity, and copies the files the ``tex-mml-chtml`` component loads, keeping MathJax's own
layout so its loader finds them relative to the script:

- ``tex-mml-chtml.js``: TeX and MathML input, CommonHTML output, the context menu;
- ``output/chtml/fonts/woff-v2/``: the web fonts CommonHTML loads;
- ``input/tex/extensions/``, ``input/mml/extensions/``: the TeX packages ``autoload`` and
  ``\\require`` fetch on first use (``\\cancel``, ``\\boldsymbol``, ``physics``, ...);
- ``ui/``, ``a11y/``: what the context menu loads lazily;
- ``LICENSE`` (Apache-2.0).

Left out (so 3.1 MB in 70 files instead of 24 MB): the other combined components and the speech-rule
engine ``sre/`` (only the menu's opt-in explorer / speech options use it).

The result is git-ignored and rebuilt when missing or when the pinned version changes (a stamp
file records what was vendored); ``--force`` re-fetches.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "3.2.2"
#: ``npm view mathjax@3.2.2 dist.integrity``
INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
#: Paths inside ``package/es5/`` that are copied (a trailing slash copies a folder's tree).
KEEP = (
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2/",
    "input/tex/extensions/",
    "input/mml/extensions/",
    "ui/",
    "a11y/",
)

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "docs" / "javascripts" / "vendor" / "mathjax"
CACHE = ROOT / "build" / "npm"
STAMP = ".vendored"


def _wanted(name: str) -> str | None:
    """Destination path (relative to ``DEST``) of tarball member ``name``, or None to skip it."""
    if name == "package/LICENSE":
        return "LICENSE"
    prefix = "package/es5/"
    if not name.startswith(prefix):
        return None
    rel = name[len(prefix) :]
    if any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in KEEP):
        return rel
    return None


def fetch_tarball() -> Path:
    """``npm pack mathjax@VERSION`` into ``build/npm/`` (reused when present) and verify it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tgz = CACHE / f"mathjax-{VERSION}.tgz"
    if not tgz.exists():
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("vendor_mathjax: npm not found (Node.js >= 18 with npm is needed to build the docs)")
        out = subprocess.run(
            [npm, "pack", f"mathjax@{VERSION}", "--pack-destination", str(CACHE), "--json", "--silent"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        packed = CACHE / json.loads(out)[0]["filename"]
        if packed != tgz:
            packed.rename(tgz)
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, tgz.read_bytes()).digest()).decode()
    if got != want:
        tgz.unlink()
        sys.exit(f"vendor_mathjax: {tgz.name} fails its integrity check ({algo} {got} != {want})")
    return tgz


def vendor(force: bool = False) -> Path:
    stamp = DEST / STAMP
    if not force and stamp.exists() and stamp.read_text().strip() == INTEGRITY:
        return DEST
    tgz = fetch_tarball()
    DEST.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEST.parent) as tmp:
        staging = Path(tmp) / "mathjax"
        n = 0
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                rel = _wanted(member.name)
                if rel is None or not member.isfile():
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                target.write_bytes(src.read())
                n += 1
        if not (staging / "tex-mml-chtml.js").exists():
            sys.exit(f"vendor_mathjax: {tgz.name} has no es5/tex-mml-chtml.js")
        (staging / STAMP).write_text(INTEGRITY + "\n")
        if DEST.exists():
            shutil.rmtree(DEST)
        staging.rename(DEST)
    size = sum(p.stat().st_size for p in DEST.rglob("*") if p.is_file())
    print(f"vendor_mathjax: MathJax {VERSION}: {n} files, {size / 1e6:.1f} MB -> {DEST.relative_to(ROOT)}")
    return DEST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-fetch and re-copy even if up to date")
    vendor(force=parser.parse_args().force)


if __name__ == "__main__":
    main()
