"""Docs build helpers: the code's Sphinx roles become links, and none reaches a page raw.

The docstrings cross-reference with Sphinx roles (``:class:`TaskRunError```,
``:meth:`~Render.close```), which Markdown would show as typed. Two pieces, named in
``mkdocs.yml``:

- :class:`SphinxRoles`, a griffe extension: once a package is loaded, every docstring's
  roles become ``<autoref>`` links to the named object (resolved from where the
  docstring sits; ``~`` shows the last name only). A link whose target is not on any
  page renders as the plain name (``optional``), never as a broken link.
- ``on_page_content``, a MkDocs hook: the build fails if a raw role is left in a page.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|meth|func|mod|attr|data|exc|obj|const):`([^`]+)`")
# The same role once Markdown has turned its backticks into <code>.
RENDERED_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):(?:`|<code>)")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` means where ``obj``'s docstring is, if it can be found."""
    name = name.strip().lstrip(".")
    head, _, rest = name.partition(".")
    for scope in (obj, obj.parent):
        if scope is None:
            continue
        try:
            base = scope.resolve(head)
        except Exception:  # griffe raises its own resolution errors
            continue
        return f"{base}.{rest}" if rest else base
    return name if "." in name else None


def _rewrite(text: str, obj: griffe.Object) -> str:
    def replace(match: re.Match[str]) -> str:
        kind, body = match.group(1), match.group(2)
        title, _, explicit = body.partition(" <")
        if explicit:  # :class:`title <path>`
            path, shown = explicit.rstrip(">"), title
        else:
            path = body.lstrip("~")
            shown = path.rsplit(".", 1)[-1] if body.startswith("~") else path
        if kind in ("meth", "func") and not shown.endswith(")"):
            shown += "()"
        target = _target(obj, path)
        code = f"<code>{html.escape(shown)}</code>"
        if target is None:
            return code
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    return ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package (see the module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj.docstring.value, obj)
            stack.extend(m for m in obj.members.values() if not m.is_alias)


def on_page_content(html_text: str, page: Any, **kwargs: Any) -> str:
    """MkDocs hook: refuse a page that still shows a raw Sphinx role."""
    found = RENDERED_ROLE.search(html_text)
    if found:
        raise RuntimeError(
            f"{page.file.src_path}: a raw Sphinx role reached the page: {found.group(0)!r}"
        )
    return html_text
