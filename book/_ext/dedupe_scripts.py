"""Drop duplicate <script> entries from every page.

Jupyter Book 1.x runs sphinx-thebe's set-up twice in one build (once with an empty file
name, once with none), which declares the same ``const`` twice and stops the page's
JavaScript with a SyntaxError; the browser check (tests/browser/check_rendered_book.py)
caught it.
"""


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (
        getattr(script, "filename", None) or str(script)
        if not attributes.get("body")
        else "",
        tuple(sorted((k, str(v)) for k, v in attributes.items())),
    )


def _dedupe(app, pagename, templatename, context, doctree):
    if "script_files" not in context:
        return
    seen, unique = set(), []
    for script in context["script_files"]:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
