"""MkDocs hooks for the course notebooks: what mkdocs-jupyter leaves for the site to fix.

Links. A notebook links to other pages by their source files (``../scaling-to-jax.md``,
``05-derivatives-of-derivatives.ipynb#perturbation-confusion-happening``): those are what
Jupyter and GitHub open. MkDocs rewrites such links in Markdown pages, but mkdocs-jupyter
renders notebooks with nbconvert, which leaves them as they are, so on the site they would
lead to the sources. :func:`built_links` points them at the built pages (``.html``:
mkdocs.yml sets ``use_directory_urls: false``).

Printed text. The kernel sends what a cell prints in pieces, flushed on a timer, and the
build keeps each piece as an output of its own: on a busy machine one printed line can
come out as two boxes, cut in the middle. :func:`joined_streams` joins consecutive
pieces of printed text back into one block, as Jupyter shows them.

tests/test_docs.py checks both on the built site.
"""

from __future__ import annotations

import re
from typing import Any

# A relative href (no scheme, not absolute, not an anchor alone) to a .md or .ipynb file.
SOURCE_LINK = re.compile(r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)([^"#?]+)\.(?:md|ipynb)(#[^"]*)?"')

# The end of one printed-text output and the start of the next, as nbconvert writes them.
STREAM_SEAM = ('</pre>\n</div>\n</div>\n<div class="jp-OutputArea-child">\n'
               '<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="text/plain" '
               'tabindex="0">\n<pre>')


def built_links(html: str) -> str:
    """The html with each link to a page's source pointing at the built page instead.

    >>> built_links('<a href="../arrays.md#x">a</a> <a href="02-tape.ipynb">b</a>')
    '<a href="../arrays.html#x">a</a> <a href="02-tape.html">b</a>'
    >>> built_links('<a href="https://x.org/a.md">c</a> <a href="#a.md">d</a>')
    '<a href="https://x.org/a.md">c</a> <a href="#a.md">d</a>'
    """
    return SOURCE_LINK.sub(lambda m: f'href="{m[1]}.html{m[2] or ""}"', html)


def joined_streams(html: str) -> str:
    """The html with consecutive printed-text outputs of a cell joined into one."""
    return html.replace(STREAM_SEAM, "")


def on_page_content(html: str, page: Any, **_: Any) -> str:
    """MkDocs calls this with each page's HTML; only notebooks need fixing."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    return joined_streams(built_links(html))
