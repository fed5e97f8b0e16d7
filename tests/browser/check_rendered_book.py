"""Load every page of the built book in headless Chromium and fail on what a reader
would see as broken.

Checks, per page, on the DOM after JavaScript ran (MathJax included):
- a Sphinx/docutils error box (``.system-message``);
- math left un-typeset (a ``.math`` element without MathJax output);
- an image, script or stylesheet that is missing locally or would need the internet;
- an internal link to a missing page or anchor;
- an uncaught JavaScript error (Chromium's console log);
- a code or output block, or a table, wider than the content column (its
  ``scrollWidth`` exceeds its ``clientWidth``, or it reaches past the article's right
  edge), measured at a 1280-pixel-wide window by a script the test server adds to every
  page it serves.
It saves a screenshot of the introduction, the instructor guide and every chapter to
``_build/screenshots``. Run after the build: ``python
tests/browser/check_rendered_book.py [_build/html]``. Exit code 1 on any problem.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from bs4 import BeautifulSoup

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
# index.html only redirects
SKIP = {
    "index.html",
    "genindex.html",
    "search.html",
    "py-modindex.html",
    "prf-prf.html",
}
SCREENSHOTS = ["book/intro.html", "book/instructors.html"]  # and every chapter
WINDOW = "--window-size=1280,2400"
# Added before </body> of every served page: after load (and MathJax), list the blocks
# that overflow horizontally in a data attribute that --dump-dom returns.
MEASURE = b"""<script>
window.addEventListener("load", function () { setTimeout(function () {
  var article = document.querySelector("article") || document.body;
  var edge = article.getBoundingClientRect().right + 1, out = [];
  var blocks = "div.highlight pre, div.cell_output pre, div.cell_output table, "
    + "div.cell_output .output, table";
  article.querySelectorAll(blocks).forEach(function (el) {
    // folded (hidden) cells are measured when opened
    if (!el.offsetParent || (el.checkVisibility && !el.checkVisibility())) return;
    var wide = el.scrollWidth - el.clientWidth;
    var past = el.getBoundingClientRect().right - edge;
    var text = (el.textContent || "").trim().slice(0, 70);
    if (wide > 1 || past > 0) out.push(el.tagName.toLowerCase() + " +"
      + Math.round(Math.max(wide, past)) + "px: " + text);
  });
  document.body.setAttribute("data-overflow", JSON.stringify(out));
}, 2000); });
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no chromium found: install Debian's 'chromium' package")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", MEASURE + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def render(browser: str, url: str, profile: str) -> tuple[str, str]:
    result = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            WINDOW,
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout, result.stderr


def ids_of(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        soup = BeautifulSoup(path.read_text(errors="replace"), "html.parser")
        cache[path] = {tag["id"] for tag in soup.find_all(id=True)} | {
            tag["name"] for tag in soup.find_all("a", attrs={"name": True})
        }
    return cache[path]


def check_page(
    root: Path, page: Path, dom: str, log: str, base: str, id_cache: dict
) -> list[str]:
    problems = []
    soup = BeautifulSoup(dom, "html.parser")
    rel = page.relative_to(root).as_posix()
    page_url = urljoin(base, rel)
    for box in soup.select(".system-message"):
        problems.append(f"error box: {box.get_text(' ', strip=True)[:120]}")
    for math in soup.select(".math"):
        if not math.find("mjx-container"):
            problems.append(f"un-typeset math: {math.get_text(strip=True)[:80]}")
    resources = [(t.get("src"), "image") for t in soup.find_all("img")]
    resources += [
        (t.get("src"), "script") for t in soup.find_all("script") if t.get("src")
    ]
    resources += [
        (t.get("href"), "stylesheet") for t in soup.find_all("link", rel="stylesheet")
    ]
    for src, kind in resources:
        if not src or src.startswith("data:"):
            continue
        target = urlparse(urljoin(page_url, src))
        if target.netloc != urlparse(base).netloc:
            problems.append(f"{kind} needs the internet: {src}")
        elif not (root / unquote(target.path.lstrip("/"))).is_file():
            problems.append(f"missing {kind}: {src}")
    for a in soup.find_all("a", href=True):
        href = a["href"]
        if href.startswith(("mailto:", "javascript:")):
            continue
        target = urlparse(urljoin(page_url, href))
        if target.netloc != urlparse(base).netloc:
            continue  # external links (Colab, GitHub, papers) are links, not resources
        path, fragment = urldefrag(target.geturl())
        file = root / unquote(urlparse(path).path.lstrip("/"))
        if file.is_dir():
            file = file / "index.html"
        if not file.is_file():
            problems.append(f"broken link: {href}")
        elif (
            fragment
            and file.suffix == ".html"
            and fragment not in ids_of(file, id_cache)
        ):
            problems.append(f"broken anchor: {href}")
    for line in log.splitlines():
        if "Uncaught" in line and "CONSOLE" in line:
            problems.append(f"javascript error: {line.strip()[:160]}")
    measured = soup.body.get("data-overflow") if soup.body else None
    if measured is None:
        problems.append("overflow not measured: the measuring script did not run")
    for block in json.loads(measured or "[]"):
        problems.append(f"block wider than the page: {block}")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "_build/html").resolve()
    if not (root / "index.html").is_file():
        sys.exit(f"no built book at {root}")
    browser = chromium()
    server, base = serve(root)
    pages = sorted(
        p
        for p in root.rglob("*.html")
        if p.name not in SKIP
        and "_modules" not in p.parts
        and "_sources" not in p.parts
        and "_static" not in p.parts
    )
    failures, id_cache = {}, {}
    with tempfile.TemporaryDirectory() as profile:
        for page in pages:
            dom, log = render(
                browser, urljoin(base, page.relative_to(root).as_posix()), profile
            )
            problems = check_page(root, page, dom, log, base, id_cache)
            print(f"{'FAIL' if problems else 'ok  '}  {page.relative_to(root)}")
            if problems:
                failures[page] = problems
        shots = root.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        chapters = [
            p.relative_to(root).as_posix() for p in pages if "notebooks" in p.parts
        ]
        for rel in SCREENSHOTS + chapters:
            if (root / rel).is_file():
                subprocess.run(
                    [
                        browser,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={profile}",
                        WINDOW,
                        "--virtual-time-budget=15000",
                        f"--screenshot={shots / (Path(rel).stem + '.png')}",
                        urljoin(base, rel),
                    ],
                    capture_output=True,
                    timeout=120,
                )
    server.shutdown()
    for page, problems in failures.items():
        print(f"\n{page.relative_to(root)}:")
        for p in problems[:20]:
            print(f"  - {p}")
    print(
        f"\n{len(pages)} pages checked, {len(failures)} with problems; screenshots in "
        f"{root.parent / 'screenshots'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
