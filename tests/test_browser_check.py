"""The rendered-book checker flags what a reader would see as broken (no browser needed
here)."""

import importlib.util

from booktools import ROOT

spec = importlib.util.spec_from_file_location(
    "check_rendered_book", ROOT / "tests" / "browser" / "check_rendered_book.py"
)
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)


def test_check_page_reports_each_kind_of_breakage(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "other.html").write_text(
        '<html><body><h1 id="present">x</h1></body></html>'
    )
    (tmp_path / "book" / "ok.png").write_bytes(b"png")
    page = tmp_path / "book" / "page.html"
    wide = "[&quot;pre +120px: print(results)&quot;]"
    dom = f"""<html><body data-overflow="{wide}">
      <div class="system-message">Unknown directive type</div>
      <span class="math">\\(x^2\\)</span>
      <span class="math"><mjx-container>typeset</mjx-container></span>
      <img src="ok.png"><img src="missing.png"><img src="https://example.org/badge.svg">
      <a href="other.html#present">fine</a><a href="other.html#absent">bad anchor</a>
      <a href="gone.html">bad</a>
      <a href="https://colab.research.google.com/x">external links are fine</a>
    </body></html>"""
    log = '[1:1:INFO:CONSOLE:64] "Uncaught TypeError: x is undefined", source: page.js'
    problems = checker.check_page(tmp_path, page, dom, log, "http://127.0.0.1:1/", {})
    kinds = sorted(p.split(":")[0] for p in problems)
    assert kinds == [
        "block wider than the page",
        "broken anchor",
        "broken link",
        "error box",
        "image needs the internet",
        "javascript error",
        "missing image",
        "un-typeset math",
    ], problems


def test_a_page_whose_overflow_was_not_measured_fails(tmp_path):
    page = tmp_path / "page.html"
    dom = "<html><body><p>no measuring script ran</p></body></html>"
    problems = checker.check_page(tmp_path, page, dom, "", "http://127.0.0.1:1/", {})
    assert problems == ["overflow not measured: the measuring script did not run"]
    fine = '<html><body data-overflow="[]"><p>measured, nothing wide</p></body></html>'
    assert checker.check_page(tmp_path, page, fine, "", "http://127.0.0.1:1/", {}) == []
