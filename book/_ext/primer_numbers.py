"""Number the primers' exercises, equations and figures within each primer (P1.2).

The method chapters sit in numbered toctrees, so Sphinx numbers their exercises within
the chapter (Exercise 1.2). The primers sit in an unnumbered part, where Sphinx keeps
one counter for every unnumbered page: the first exercise of primer 1 was "Exercise 4",
after the conventions page's three. Numbering the primers' part instead would make the
method chapters 7 to 12. This extension runs after Sphinx has assigned the numbers and
renumbers, in every page named ``notebooks/pK_...``, each kind of numbered object from
1 in page order, prefixed by the primer's label: "Exercise P1.2", equation (P5.3).
"""

import re

PRIMER = re.compile(r"^notebooks/p(\d+)_")


def _renumber(app, env) -> list[str]:
    renumbered = []
    for docname, by_type in env.toc_fignumbers.items():
        match = PRIMER.match(docname)
        if not match:
            continue
        label = f"P{match.group(1)}"
        for figtype, numbers in by_type.items():
            in_page_order = sorted(numbers, key=numbers.get)
            for position, node_id in enumerate(in_page_order, start=1):
                numbers[node_id] = (label, position)
        renumbered.append(docname)
    return renumbered


def setup(app):
    # After the toctree collector (priority 500) has assigned the book-wide numbers.
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
