"""MkDocs hook: a course notebook's links work on the site as they do in Jupyter and on GitHub.

A notebook links to other pages by their source files (``../scaling-to-jax.md``,
``05-derivatives-of-derivatives.ipynb#perturbation-confusion-happening``): those are what
Jupyter and GitHub open. MkDocs rewrites such links in Markdown pages, but mkdocs-jupyter
renders notebooks with nbconvert, which leaves them as they are, so on the site they would
lead to the sources. This hook points them at the built pages (``.html``: mkdocs.yml sets
``use_directory_urls: false``). tests/test_docs.py checks that every link of the built
site, anchors included, leads somewhere.
"""

from __future__ import annotations

import re
from typing import Any

# A relative href (no scheme, not absolute, not an anchor alone) to a .md or .ipynb file.
SOURCE_LINK = re.compile(r'href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)([^"#?]+)\.(?:md|ipynb)(#[^"]*)?"')


def built_links(html: str) -> str:
    """The html with each link to a page's source pointing at the built page instead.

    >>> built_links('<a href="../arrays.md#x">a</a> <a href="02-tape.ipynb">b</a>')
    '<a href="../arrays.html#x">a</a> <a href="02-tape.html">b</a>'
    >>> built_links('<a href="https://x.org/a.md">c</a> <a href="#a.md">d</a>')
    '<a href="https://x.org/a.md">c</a> <a href="#a.md">d</a>'
    """
    return SOURCE_LINK.sub(lambda m: f'href="{m[1]}.html{m[2] or ""}"', html)


def on_page_content(html: str, page: Any, **_: Any) -> str:
    """MkDocs calls this with each page's HTML; only notebooks need their links fixed."""
    return built_links(html) if page.file.src_uri.endswith(".ipynb") else html
