"""Reading VoxBento's HTML pages as a browser does (contract Appendix B): the one HTML parser of the clients.

Built on the standard library's ``html.parser`` (the tokenizer browsers' rules are modelled on): any quote
style (VoxBento's booth page writes ``data-booth-id='...'``, other pages double quotes), any attribute
order, character references in text and attribute values, extra classes and attributes. A small tree is
kept (``Element``) with the implied end tags real pages rely on (``<tr>``, ``<td>``, ``<li>``, ``<option>``,
``<p>``), so a read-back can ask "the ``<tr>`` that holds ``<code>es</code>``" instead of matching text.

This module knows no page: the shapes (which element, which attribute) live with the surface that reads
them (``admin``, ``interpreter``, ``listener``). A read-back that finds nothing raises
:class:`~harness.clients.errors.ReadBackError` naming the URL and what was missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser

from .errors import ReadBackError

# HTML Living Standard 13.1.2: void elements have no end tag and no content.
VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                           "track", "wbr"})
# HTML Living Standard 13.1.2.4 (optional end tags): a start tag in the key closes an open element in the value,
# as long as no element in the barrier set lies between them (a nested table keeps its outer row open).
_IMPLIED_END = {
    "tr": ({"tr"}, {"table"}),
    "td": ({"td", "th"}, {"tr", "table"}),
    "th": ({"td", "th"}, {"tr", "table"}),
    "li": ({"li"}, {"ul", "ol"}),
    "option": ({"option"}, {"select", "datalist"}),
    "p": ({"p"}, {"div", "section", "article", "td", "th", "li", "body"}),
}
_SPACE = re.compile(r"\s+")
_FOREIGN_ROOTS = frozenset({"svg", "math"})


class Element:
    """One element: lower-case tag, attributes (first occurrence wins, as in browsers), children in order."""

    __slots__ = ("tag", "attrs", "children", "parent")

    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Element | str] = []
        self.parent = parent

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs!r}>"

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name.lower(), default)

    @property
    def classes(self) -> frozenset[str]:
        return frozenset((self.attrs.get("class") or "").split())

    def data(self) -> dict[str, str]:
        """The `data-*` attributes without their prefix (`data-booth-id` -> `booth-id`)."""
        return {k[5:]: v for k, v in self.attrs.items() if k.startswith("data-")}

    def text(self) -> str:
        """All text inside, character references decoded, whitespace runs collapsed and ends stripped."""
        return _SPACE.sub(" ", self.raw_text()).strip()

    def raw_text(self) -> str:
        parts: list[str] = []
        stack: list[Element | str] = [self]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                parts.append(node)
            else:
                stack.extend(reversed(node.children))
        return "".join(parts)

    def iter(self, tag: str | None = None) -> Iterator[Element]:
        """Descendants in document order (not self), optionally only one tag."""
        stack = [c for c in reversed(self.children) if isinstance(c, Element)]
        while stack:
            node = stack.pop()
            if tag is None or node.tag == tag:
                yield node
            stack.extend(c for c in reversed(node.children) if isinstance(c, Element))

    def find_all(self, tag: str | None = None, where: Callable[[Element], bool] | None = None, **attrs: str) -> list[Element]:
        """Descendants with `tag`, every given attribute equal (`class_` matches one class among several,
        `id_`/`for_` avoid keywords; other underscores mean hyphens), and `where(element)` true."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for node in self.iter(tag):
            if all((v in node.classes) if k == "class" else node.attrs.get(k) == v for k, v in wanted.items()):
                if where is None or where(node):
                    found.append(node)
        return found

    def find(self, tag: str | None = None, where: Callable[[Element], bool] | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, where, **attrs)
        return found[0] if found else None

    def links(self) -> list[str]:
        """The `href` of every `<a>` inside, in order."""
        return [a.attrs["href"] for a in self.iter("a") if a.attrs.get("href")]


class Document(Element):
    """A parsed page; `url` is where it came from (named in every ReadBackError)."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        super().__init__("#document", {}, None)
        self.url = url

    def missing(self, what: str) -> ReadBackError:
        """The error for a read-back that found no `what` on this page."""
        return ReadBackError(self.url, what)

    def one(self, tag: str | None = None, what: str = "", where: Callable[[Element], bool] | None = None, **attrs: str) -> Element:
        """Exactly one matching element, else ReadBackError (none, or ambiguous)."""
        found = self.find_all(tag, where, **attrs)
        described = what or _describe(tag, attrs)
        if len(found) != 1:
            raise ReadBackError(self.url, described, "not found" if not found else f"{len(found)} matches, expected one")
        return found[0]


def _describe(tag: str | None, attrs: dict[str, str]) -> str:
    shown = " ".join(f'{k.rstrip("_").replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f"<{tag or '*'}{' ' + shown if shown else ''}>"


class _TreeBuilder(HTMLParser):
    def __init__(self, document: Document) -> None:
        super().__init__(convert_charrefs=True)
        self.document = document
        self.stack: list[Element] = [document]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._imply_end(tag)
        merged: dict[str, str] = {}
        for name, value in attrs:
            merged.setdefault(name, "" if value is None else value)  # a bare attribute has the empty string as value
        element = Element(tag, merged, self.stack[-1])
        self.stack[-1].children.append(element)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # `<div/>` is not self-closing in HTML (only void and foreign elements are); browsers treat it as a start tag.
        # Inside <svg>/<math> (foreign content) `/>` does close the element.
        foreign = tag in _FOREIGN_ROOTS or any(e.tag in _FOREIGN_ROOTS for e in self.stack)
        self.handle_starttag(tag, attrs)
        if foreign and tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        # Close up to the nearest open element of that tag; a stray end tag is ignored, as browsers do.
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)

    def _imply_end(self, tag: str) -> None:
        rule = _IMPLIED_END.get(tag)
        if rule is None:
            return
        closes, barriers = rule
        for depth in range(len(self.stack) - 1, 0, -1):
            open_tag = self.stack[depth].tag
            if open_tag in closes:
                del self.stack[depth:]
                return
            if open_tag in barriers:
                return


def parse(text: str, url: str) -> Document:
    """Parse a page; never raises on malformed markup (browsers do not either)."""
    document = Document(url)
    builder = _TreeBuilder(document)
    builder.feed(text)
    builder.close()
    return document
