"""Reading back report.html and figures as a person's browser would: `scan_report` parses the
page with the standard library's html.parser and checks it is well nested and self-contained;
`legend_overlaps` finds legends drawn over any axes of a figure."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}
SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a"}


@dataclass
class ReportScan:
    """What a parsed page holds: element ids, internal link targets, decoded images
    [(mime, bytes, alt)], figure captions, text, and the problems found."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    images: list[tuple[str, bytes, str]] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    text: str = ""
    problems: list[str] = field(default_factory=list)


class _Scanner(HTMLParser):
    def __init__(self, scan: ReportScan):
        super().__init__(convert_charrefs=True)
        self.scan, self.stack, self.in_caption, self.chunks = scan, [], False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.scan.problems.append(f"<{tag}> element")
        for name, value in attrs.items():
            if value and name in ("src", "href", "style") and ("//" in value.split(",")[0] or "url(" in value):
                self.scan.problems.append(f"external reference {name}={value[:60]!r}")
        if "id" in attrs:
            if attrs["id"] in self.scan.ids:
                self.scan.problems.append(f"duplicate id {attrs['id']!r}")
            self.scan.ids.add(attrs["id"])
        if tag == "a":
            href = attrs.get("href", "")
            if not href.startswith("#"):
                self.scan.problems.append(f"link to {href!r} outside the page")
            self.scan.links.append(href[1:])
        if tag == "img":
            self._image(attrs.get("src", ""), attrs.get("alt", ""))
        if tag == "figcaption":
            self.in_caption = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.scan.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "figcaption":
            self.in_caption = False

    def handle_data(self, data):
        self.chunks.append(data)
        if self.in_caption:
            self.scan.captions.append(data.strip())

    def _image(self, src: str, alt: str):
        head, _, payload = src.partition(",")
        mime = head.removeprefix("data:").removesuffix(";base64")
        if not head.startswith("data:") or mime not in SIGNATURES:
            self.scan.problems.append(f"image not embedded: {src[:60]!r}")
            return
        data = base64.b64decode(payload, validate=True)
        if not data.startswith(SIGNATURES[mime]):
            self.scan.problems.append(f"{mime} image {alt!r} is not one")
        self.scan.images.append((mime, data, alt))


def scan_report(path: Path) -> ReportScan:
    """Parse an HTML file; `problems` lists bad nesting, unclosed tags, scripts, external or
    broken references and images that are not embedded (or not what they claim)."""
    text = path.read_text(encoding="utf-8")
    scan = ReportScan()
    scanner = _Scanner(scan)
    scanner.feed(text)
    scanner.close()
    if not text.startswith("<!DOCTYPE html>"):
        scan.problems.append("no doctype")
    if scanner.stack:
        scan.problems.append(f"unclosed {scanner.stack}")
    scan.problems += [f"link to missing #{target}" for target in scan.links if target not in scan.ids]
    scan.text = " ".join(scanner.chunks)
    return scan


def legend_overlaps(fig) -> list[str]:
    """Legends of `fig` (its own and its axes') whose drawn box meets an axes' box, labels and
    title included."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [f"legend over axes {i}" for legend in legends for i, ax in enumerate(fig.axes)
            if legend.get_window_extent(renderer).overlaps(ax.get_tightbbox(renderer))]
