"""The Colab edition (``colab/*.ipynb``): the chapter notebooks with Markdown that Colab
renders.

Colab renders Markdown, not MyST: a ``{exercise}`` fence shows as a code block and
``{cite:t}`` as text. The edition keeps every code cell of its source unchanged (the
install cell moved first) and rewrites the Markdown cells:

- exercises become numbered bold headings, solutions collapsed ``<details>`` blocks;
- theorems, propositions, lemmas, corollaries and proofs become bold paragraphs,
  admonitions a bold label;
- labelled display equations are numbered with ``\\tag`` and ``{eq}`` references cite
  the number; numbers follow the book's (equation (4.3), Exercise P1.2);
- citations become author–year text, with the cited entries listed at the end;
- cross-references to other pages link to the rendered book;
- API roles become inline code; glued numbers become ``‹name›`` (the run's values:
  ``trustml_ref.claims.glued()``).

``python -m trustml_ref.teaching colab-edition`` (``make colab``) writes it after a
chapter changes; the tests check that the committed edition is current and free of
MyST. ``make-student --colab-repository`` applies the same rewriting to a student
edition.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

PRF_NAMES = {
    "prf:theorem": "Theorem",
    "prf:proposition": "Proposition",
    "prf:lemma": "Lemma",
    "prf:corollary": "Corollary",
    "prf:definition": "Definition",
}
ADMONITIONS = {"note", "important", "warning", "tip", "caution", "attention"}
FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w:-]+)\}\s*(.*)$")
OPTION = re.compile(r"^:([\w-]+):\s*(.*)$")
TARGET = re.compile(r"^\(([\w-]+)\)=\s*$")
EQ_CLOSE = re.compile(r"^\$\$\s*\(([\w-]+)\)\s*$")
ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def book_url(root: Path) -> str:
    """The rendered book's address, ``html.baseurl`` in ``_config.yml``."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["html"]["baseurl"].rstrip("/")


def toc_documents(root: Path) -> list[str]:
    """Every page ``_toc.yml`` lists, in order, without extensions."""

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    yield node[key]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(yaml.safe_load((root / "_toc.yml").read_text())))


def chapter_prefix(doc: str) -> str:
    """The book's number prefix of a page: ``"4."`` for chapter 4, ``"P1."`` for
    primer 1, ``""`` for unnumbered pages."""
    name = Path(doc).name
    if match := re.match(r"^p(\d+)_", name):
        return f"P{match.group(1)}."
    if (match := re.match(r"^(\d+)_", name)) and int(match.group(1)) > 0:
        return f"{int(match.group(1))}."
    return ""


@dataclass(frozen=True)
class Target:
    doc: str  # the page, e.g. "notebooks/01_safe_lora"
    anchor: str  # the HTML id in the rendered page
    text: str  # how a reference reads: "equation (1.2)", "Theorem 3.1", a title


def _markdown_sources(root: Path, doc: str) -> list[str]:
    path = root / f"{doc}.ipynb"
    if path.exists():
        nb = nbformat.read(path, as_version=4)
        return [c.source for c in nb.cells if c.cell_type == "markdown"]
    return [(root / f"{doc}.md").read_text()]


def collect_targets(pages: dict[str, list[str]]) -> dict[str, Target]:
    """Every label of the book's pages (page -> its Markdown), numbered as the book
    numbers it."""
    targets: dict[str, Target] = {}
    for doc, sources in pages.items():
        prefix = chapter_prefix(doc)
        counts: dict[str, int] = {}
        pending: str | None = None
        for source in sources:
            lines = source.splitlines()
            for i, line in enumerate(lines):
                if pending and line.startswith("#"):
                    title = line.lstrip("#").strip()
                    targets[pending] = Target(doc, pending, title)
                    pending = None
                if match := TARGET.match(line):
                    pending = match.group(1)
                elif match := EQ_CLOSE.match(line):
                    counts["eq"] = counts.get("eq", 0) + 1
                    number = f"({prefix}{counts['eq']})"
                    label = match.group(1)
                    targets[label] = Target(doc, f"equation-{label}", number)
                elif match := FENCE.match(line):
                    kind = match.group(2)
                    if kind == "exercise" or kind in PRF_NAMES:
                        counts[kind] = counts.get(kind, 0) + 1
                        name = PRF_NAMES.get(kind, "Exercise")
                        for option in lines[i + 1 :]:
                            opt = OPTION.match(option)
                            if not opt:
                                break
                            if opt.group(1) == "label":
                                label = opt.group(2).strip()
                                text = f"{name} {prefix}{counts[kind]}"
                                targets[label] = Target(doc, label, text)
    return targets


def load_bibliography(root: Path) -> dict[str, dict[str, str]]:
    """Each entry of ``book/references.bib``: its author–year form and full text."""
    from pybtex.database import parse_file

    entries = {}
    for key, entry in parse_file(str(root / "book" / "references.bib")).entries.items():
        people = entry.persons.get("author", [])
        last = [
            " ".join(p.last_names).replace("{", "").replace("}", "") for p in people
        ]
        if len(last) == 1:
            short = last[0]
        elif len(last) == 2:
            short = f"{last[0]} and {last[1]}"
        else:
            short = f"{last[0]} et al."
        fields = {
            k.lower(): v.replace("{", "").replace("}", "")
            for k, v in entry.fields.items()
        }
        names = ", ".join(str(p).replace("{", "").replace("}", "") for p in people)
        venue = (
            fields.get("booktitle")
            or fields.get("journal")
            or fields.get("publisher", "")
        )
        full = f"{names} ({fields.get('year', 'n.d.')}). {fields.get('title', '')}."
        if venue:
            full += f" *{venue}*."
        if note := fields.get("note"):
            full += f" {note}."
        if url := fields.get("url"):
            full += f" <{url}>"
        entries[key] = {
            "short": short,
            "year": fields.get("year", "n.d."),
            "full": full,
        }
    return entries


class Converter:
    """Rewrites one page's Markdown cells; collects the citations it meets."""

    def __init__(self, doc: str, book: Book):
        self.doc, self.targets, self.bib, self.url = (
            doc,
            book.targets,
            book.bibliography,
            book.url,
        )
        self.titles = book.titles
        self.cited: list[str] = []

    def link(self, target: Target, text: str | None = None) -> str:
        if target.doc == self.doc and text is None:
            return target.text
        return f"[{text or target.text}]({self.url}/{target.doc}.html#{target.anchor})"

    def target(self, label: str) -> Target:
        if label not in self.targets:
            raise ValueError(f"{self.doc}: reference to unknown label {label!r}")
        return self.targets[label]

    def cite(self, keys: str, parenthetical: bool) -> str:
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.bib:
                raise ValueError(f"{self.doc}: citation of unknown key {key!r}")
            if key not in self.cited:
                self.cited.append(key)
            entry = self.bib[key]
            parts.append(
                f"{entry['short']}, {entry['year']}"
                if parenthetical
                else f"{entry['short']} ({entry['year']})"
            )
        return f"({'; '.join(parts)})" if parenthetical else ", ".join(parts)

    def role(self, match: re.Match) -> str:
        name, content = match.group(1), match.group(2)
        if name == "cite:t":
            return self.cite(content, parenthetical=False)
        if name == "cite:p":
            return self.cite(content, parenthetical=True)
        if name == "eq":
            target = self.target(content)
            return self.link(target) if target.doc != self.doc else target.text
        if name in ("ref", "prf:ref", "numref"):
            explicit = re.match(r"^(.*?)\s*<([\w-]+)>$", content)
            text, label = (
                (explicit.group(1), explicit.group(2)) if explicit else (None, content)
            )
            return self.link(self.target(label), text)
        if name == "doc":
            explicit = re.match(r"^(.*?)\s*<([\w/.-]+)>$", content)
            text, page = (
                (explicit.group(1), explicit.group(2)) if explicit else (None, content)
            )
            doc = (
                str(Path(self.doc).parent / page)
                if "/" not in page
                else page.lstrip("/")
            )
            title = text or self.titles[doc]
            return f"[{title}]({self.url}/{doc}.html)"
        if name.startswith("glue"):
            return f"‹{content.split(':')[0]}›"
        if name in ("func", "class", "mod", "meth", "attr", "data", "obj"):
            shown = content.split(".")[-1] if content.startswith("~") else content
            return f"`{shown.lstrip('~')}{'()' if name in ('func', 'meth') else ''}`"
        raise ValueError(f"{self.doc}: no Colab rendering for the role {{{name}}}")

    def directive(self, kind: str, argument: str, options: dict, body: str) -> str:
        label = options.get("label")
        if kind == "exercise":
            title = self.targets[label].text if label else "Exercise"
            head = f"**{title}**" + (f" ({argument})" if argument else "")
            return f"{head}\n\n{body}"
        if kind == "solution":
            which = self.target(argument.strip()).text
            return (
                f"<details>\n<summary><b>Solution to {which}</b></summary>\n\n"
                f"{body}\n\n</details>"
            )
        if kind in PRF_NAMES:
            title = self.targets[label].text if label else PRF_NAMES[kind]
            head = f"**{title}**" + (f" ({argument})" if argument else "") + "."
            return f"{head} {body}"
        if kind == "prf:proof":
            return f"*Proof.* {body} ∎"
        if kind in ADMONITIONS:
            return f"**{kind.capitalize()}.** {body}"
        if kind == "admonition":
            return f"**{argument}.** {body}"
        raise ValueError(f"{self.doc}: no Colab rendering for the directive {{{kind}}}")

    def markdown(self, source: str) -> str:
        lines = source.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if TARGET.match(line):
                i += 1
                continue
            if match := FENCE.match(line):
                fence, kind, argument = match.groups()
                options, i = {}, i + 1
                while i < len(lines) and (opt := OPTION.match(lines[i])):
                    options[opt.group(1)] = opt.group(2).strip()
                    i += 1
                body: list[str] = []
                depth = 1
                while i < len(lines):
                    if FENCE.match(lines[i]):
                        depth += 1
                    elif lines[i].strip() == fence:
                        depth -= 1
                        if depth == 0:
                            break
                    body.append(lines[i])
                    i += 1
                if depth:
                    raise ValueError(f"{self.doc}: unclosed {{{kind}}} directive")
                inner = self.markdown("\n".join(body).strip("\n"))
                out.append(self.directive(kind, argument.strip(), options, inner))
                i += 1
                continue
            if match := EQ_CLOSE.match(line):
                out.append(f"\\tag{{{self.target(match.group(1)).text.strip('()')}}}")
                out.append("$$")
                i += 1
                continue
            out.append(BADGE.sub(self.book_link(), line))
            i += 1
        return ROLE.sub(self.role, "\n".join(out))

    def book_link(self) -> str:
        return f"[Read this page in the rendered book]({self.url}/{self.doc}.html)"

    def references(self, heading: str = "## References") -> str:
        items = "\n".join(f"- {self.bib[key]['full']}" for key in self.cited)
        return f"{heading}\n\n{items}"


NOTE = (
    "*Colab edition, generated from `{doc}.py`: edit the source, not this file. "
    "Numbers the rendered book fills in from its run appear here as ‹name›; after "
    "running the notebook, `trustml_ref.claims.glued()` shows this run's values.*"
)


@dataclass(frozen=True)
class Book:
    """What rewriting a page needs from the whole book."""

    url: str
    targets: dict[str, Target]
    titles: dict[str, str]  # page -> title
    bibliography: dict[str, dict[str, str]]


def read_book(root: Path) -> Book:
    """The labels, titles and bibliography of the book at ``root``."""
    pages = {doc: _markdown_sources(root, doc) for doc in toc_documents(root)}
    titles = {}
    for doc, sources in pages.items():
        heads = [
            line[2:].strip()
            for source in sources
            for line in source.splitlines()
            if line.startswith("# ")
        ]
        if not heads:
            raise ValueError(f"{doc} has no title")
        titles[doc] = heads[0]
    return Book(book_url(root), collect_targets(pages), titles, load_bibliography(root))


def colab_notebook(
    nb: nbformat.NotebookNode, doc: str, book: Book, badge: str | None = None
) -> nbformat.NotebookNode:
    """The Colab edition of page ``doc`` (its notebook ``nb``): install cell first,
    Markdown without MyST, the code cells unchanged, the cited works at the end.
    ``badge``: an Open-in-Colab address to put under the title."""
    converter = Converter(doc, book)
    nb = copy.deepcopy(nb)
    nb.metadata.pop("jupytext", None)
    cells = list(nb.cells)
    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = converter.markdown(cell.source)
    install = next(c for c in cells if c.cell_type == "code")
    if '"google.colab" in sys.modules' not in install.source:
        raise ValueError(f"{doc}: the first code cell is not the Colab install cell")
    cells.remove(install)
    title, _, rest = cells[0].source.partition("\n")
    note = NOTE.format(doc=doc)
    if badge:
        note += f"\n\n[![Open In Colab]({COLAB_BADGE})]({badge})"
    cells[0].source = f"{title}\n\n{note}\n{rest}".rstrip("\n")
    cells.insert(0, install)
    if converter.cited:
        own = [c for c in cells if c.source.startswith("## References")]
        if own:  # the page's own list: the full entries go under it
            own[-1].source += "\n\n" + converter.references("### Full entries")
        else:
            cells.append(nbformat.v4.new_markdown_cell(converter.references()))
    for cell in cells:
        cell.pop("id", None)  # ids are nbformat 4.5's; stable files need none
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """A notebook as the committed edition stores it (stable key order)."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def colab_edition(root: Path) -> dict[str, str]:
    """The Colab edition of the book at ``root``: file name to notebook text."""
    book = read_book(root)
    return {
        f"{Path(doc).name}.ipynb": render(
            colab_notebook(
                nbformat.read(root / f"{doc}.ipynb", as_version=4), doc, book
            )
        )
        for doc in toc_documents(root)
        if doc.startswith("notebooks/")
    }


def write_colab_edition(root: Path, out: Path) -> list[Path]:
    """Write the Colab edition under ``out`` (removing notebooks no page makes)."""
    out.mkdir(parents=True, exist_ok=True)
    files = colab_edition(root)
    for stale in sorted(out.glob("*.ipynb")):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / name for name in files]
