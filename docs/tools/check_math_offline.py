"""Check that the built site's math is typeset by MathJax with the network off.

Usage (after ``make docs``)::

    python docs/tools/check_math_offline.py [SITE_DIR] [--chromium PATH] [--page REL ...]

It serves ``SITE_DIR`` (default ``site/``) on 127.0.0.1, opens every page that has math (a
``class="arithmatex"`` element, what ``pymdownx.arithmatex`` emits) in headless Chromium with
outbound traffic cut off, and reads the DOM after the page's scripts ran (``--dump-dom`` after a
virtual-time budget). A page passes when

- every ``arithmatex`` element holds an ``mjx-container`` (MathJax typeset it),
- no ``\\(``, ``\\)``, ``\\[`` or ``\\]`` delimiter is left as text in those elements,
- no ``mjx-merror`` appears (a TeX error rendered in red), and
- the local server saw no 404 (e.g. a font or a TeX extension missing from the vendored copy).

The network is cut off twice: every non-loopback request goes to a proxy this script runs on
127.0.0.1, which records the request line (``CONNECT cdn.jsdelivr.net:443``) and answers 403,
and the host resolver maps every name other than 127.0.0.1 to ``NOTFOUND``. The blocked requests
are printed; they are not a failure by themselves (mkdocs-material asks Google Fonts for its text
font and falls back to the system font), only the math is checked. With MathJax loaded from a CDN
the check fails, since that request is blocked.

Exit status 0 when every page passes, 1 otherwise, 2 when Chromium is not found.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
DELIMITERS = ("\\(", "\\)", "\\[", "\\]")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class MathReport:
    """What the DOM of one page says about its math."""

    math: int = 0  #: ``arithmatex`` elements
    typeset: int = 0  #: ... that hold an ``mjx-container``
    errors: int = 0  #: ``mjx-merror`` elements
    raw: list[str] = field(default_factory=list)  #: text left with a TeX delimiter in it


class _MathScanner(html.parser.HTMLParser):
    """Walks a DOM dump; tracks the outermost ``arithmatex`` element and what it contains."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = MathReport()
        self._stack: list[str] = []
        self._math_depth: int | None = None  # stack depth of the open arithmatex element
        self._has_container = False
        self._text: list[str] = []
        self._mjx_depth: int | None = None  # inside an mjx-container: its text is not TeX

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mjx-merror":
            self.report.errors += 1
        if tag in VOID:
            return
        self._stack.append(tag)
        classes = (dict(attrs).get("class") or "").split()
        if self._math_depth is None and "arithmatex" in classes:
            self._math_depth = len(self._stack)
            self._has_container = False
            self._text = []
            self.report.math += 1
        elif self._math_depth is not None and tag == "mjx-container":
            self._has_container = True
            if self._mjx_depth is None:
                self._mjx_depth = len(self._stack)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or tag not in self._stack:
            return
        while self._stack:
            depth = len(self._stack)
            if self._mjx_depth == depth:
                self._mjx_depth = None
            if self._math_depth == depth:
                self._math_depth = None
                self.report.typeset += self._has_container
                text = "".join(self._text)
                if any(d in text for d in DELIMITERS):
                    self.report.raw.append(" ".join(text.split())[:80])
            if self._stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._math_depth is not None and self._mjx_depth is None:
            self._text.append(data)


def scan(dom: str) -> MathReport:
    parser = _MathScanner()
    parser.feed(dom)
    parser.close()
    return parser.report


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site; records every request's path and status, logs nothing."""

    log: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _BlackholeProxy(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """An HTTP proxy that forwards nothing: records each request line, answers 403."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.blocked: list[str] = []
        blocked = self.blocked

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(4096).decode("latin-1").strip()
                if line:
                    blocked.append(line)
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        super().__init__(("127.0.0.1", 0), Handler)


def _serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def _host(request_line: str) -> str:
    """The host of a proxy request line (``CONNECT cdn.jsdelivr.net:443 HTTP/1.1``, ``GET http://h/ ...``)."""
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else request_line
    return target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def dump_dom(chromium: str, url: str, proxy_port: int, budget_ms: int, timeout: float) -> str:
    """The DOM of ``url`` after its scripts ran, from headless Chromium with the network cut off."""
    with tempfile.TemporaryDirectory(prefix="gatorch-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-client-side-phishing-detection",
            "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,Translate",
            "--no-pings",
            f"--user-data-dir={profile}",
            # Network off: everything but loopback goes to the black-hole proxy, and no name
            # other than 127.0.0.1 resolves.
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium exited {proc.returncode} on {url}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def math_pages(site: Path) -> list[str]:
    """Site-relative paths of the pages with math, sorted."""
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if 'class="arithmatex"' in p.read_text(encoding="utf-8", errors="replace")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="site", type=Path, help="built site (default: site/)")
    parser.add_argument("--chromium", help="Chromium binary (default: $CHROMIUM, else chromium on PATH)")
    parser.add_argument("--page", action="append", help="check only this site-relative page (repeatable)")
    parser.add_argument("--budget-ms", type=int, default=10000, help="virtual time given to the scripts")
    parser.add_argument("--timeout", type=float, default=90.0, help="wall-clock seconds per page")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check_math_offline: no Chromium found (apt-get install chromium, or set $CHROMIUM)")
        return 2
    site: Path = args.site.resolve()
    if not (site / "index.html").exists():
        print(f"check_math_offline: {site} has no index.html; build the site first (make docs)")
        return 1
    pages = args.page or math_pages(site)
    if not pages:
        print(f'check_math_offline: no page in {site} has math (class="arithmatex")')
        return 1

    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_QuietHandler,), {"log": requests})
    server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    proxy = _BlackholeProxy()
    _serve(server)
    _serve(proxy)
    port = server.server_address[1]
    failures = 0
    start = time.perf_counter()
    try:
        # The servers answer before Chromium starts.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for page in pages:
            requests.clear()
            proxy.blocked.clear()
            t0 = time.perf_counter()
            url = f"http://127.0.0.1:{port}/{page}"
            try:
                report = scan(dump_dom(chromium, url, proxy.server_address[1], args.budget_ms, args.timeout))
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                print(f"FAIL {page}: {err}")
                failures += 1
                continue
            missing = sorted({path for path, code in requests if code == 404})
            problems = []
            if report.typeset < report.math:
                problems.append(f"{report.math - report.typeset} of {report.math} formulas not typeset")
            if report.raw:
                problems.append(f"raw TeX left: {report.raw[:3]}")
            if report.errors:
                problems.append(f"{report.errors} mjx-merror (TeX errors)")
            if missing:
                problems.append(f"404s: {missing[:5]}")
            fonts = sum(1 for path, code in requests if path.endswith(".woff") and code == 200)
            status = "FAIL" if problems else "ok  "
            detail = "; ".join(problems) or f"{report.typeset}/{report.math} formulas typeset"
            took = time.perf_counter() - t0
            print(f"{status} {page}: {detail} ({fonts} MathJax fonts served, {took:.1f} s)")
            if proxy.blocked:
                hosts = sorted({_host(line) for line in proxy.blocked})
                print(f"     blocked {len(proxy.blocked)} outbound request(s): {', '.join(hosts)}")
            failures += bool(problems)
    finally:
        server.shutdown()
        proxy.shutdown()
    total = time.perf_counter() - start
    passed = len(pages) - failures
    print(f"check_math_offline: {passed}/{len(pages)} pages with math pass offline ({total:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
