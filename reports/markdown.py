"""Markdown interface document from a catalog (``docs/catalog.schema.json``).

A pure function of the catalog dict: the same catalog always gives the same text, so the
document diffs cleanly in git. The content is built once in ``reports.document`` (shared
with the HTML report); here the blocks are only printed: GitHub-flavoured tables, explicit
``<a id>`` anchors (heading text holds backticks and dots, which GitHub's own slugs mangle)
and a ``mermaid`` code block per service for who calls whom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from busdoc.reports.document import (
    Block,
    Bullets,
    Code,
    Diagram,
    Heading,
    Para,
    Table,
    anchor,
    build_document,
)

__all__ = ["anchor", "markdown_files", "render_blocks", "render_markdown"]


def render_markdown(catalog: Mapping[str, Any]) -> str:
    """Render the whole catalog as one Markdown document."""
    return render_blocks(build_document(catalog))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def render_blocks(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            if block.anchor:
                out += [f'<a id="{block.anchor}"></a>', ""]
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Para):
            out += [block.text, ""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_cell(h) for h in block.head) + " |")
            out.append("|" + "---|" * len(block.head))
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, Bullets):
            out += ["  " * depth + "- " + text for depth, text in block.items]
            out.append("")
        elif isinstance(block, Code):
            out += ["```" + block.lang, block.text, "```", ""]
        elif isinstance(block, Diagram):
            out += ["```mermaid", block.mermaid, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def markdown_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    return {"interface.md": render_markdown(catalog)}
