"""The ``html`` report in real headless Chromium: it renders, it is self-contained, the
search box filters sections, and it says what the Markdown report says."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from report_samples import oslo_catalog

from busdoc.reports import render_files
from busdoc.reports.html import _inline, render_html
from busdoc.reports.markdown import render_markdown

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="apt-get install -y chromium")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "interface.html"
    path.write_text(render_files(oslo_catalog(), "html")["interface.html"])
    return path


def sections(dom: str) -> dict[str, bool]:
    """Section id → visible, from a dumped DOM."""
    out = {}
    for m in re.finditer(r'<details class="(entry[^"]*)" id="([^"]+)"', dom):
        out[m.group(2)] = "hidden" not in m.group(1).split()
    return out


@needs_chromium
def test_search_in_the_url_fragment_filters_sections(tmp_path, page):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri() + "#q=detach").stdout
    shown = sections(dom)
    assert shown["rpc-nova-compute-detach-volume-1-0"]
    assert not shown["rpc-nova-compute-attach-volume-1-1"]
    assert not shown["notification-nova-notifications-volume-attach-end"]
    assert 'value="detach"' in dom or "1 of" in dom
    assert re.search(r'<span id="count">1 of \d+ sections</span>', dom)


@needs_chromium
def test_every_word_must_match(tmp_path, page):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri() + "#q=attach%20mode").stdout
    shown = {k for k, v in sections(dom).items() if v}
    # "mode" arrived in 1.1: 1.0 matches "attach" only
    assert shown == {"rpc-nova-compute-attach-volume-1-1"}


@needs_chromium
def test_without_a_query_every_section_shows(tmp_path, page):
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    shown = sections(dom)
    assert len(shown) >= 9 and all(shown.values())


@needs_chromium
def test_screenshot_renders_a_page(tmp_path, page):
    shot = tmp_path / "interface.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1600)
    assert len(data) > 20_000  # a blank page compresses to a few hundred bytes


def test_page_is_self_contained():
    text = render_html(oslo_catalog())
    assert "<style>" in text and "<script>" in text
    assert not re.search(r"<(link|img|iframe)\b", text)
    assert not re.search(r"\bsrc\s*=", text)
    assert "@import" not in text


def test_html_says_what_markdown_says():
    catalog = oslo_catalog()
    markdown = render_markdown(catalog)
    page = render_html(catalog)
    text = re.sub(r"<[^>]+>", "", page)
    for heading in re.findall(r"^#{2,3} (.+)$", markdown, re.M):
        plain = heading.replace("`", "")
        assert plain in text, plain
    for cell in ("VolumeNotFound", "cinder.exception", "Volume 1 could not be found.",
                 "reply_&lt;uuid4 hex&gt;", "graph LR"):
        assert cell in page


def test_inline_markup_is_escaped_then_linked():
    assert _inline("**a** `<b>` [x](#y) <i>") == (
        '<strong>a</strong> <code>&lt;b&gt;</code> <a href="#y">x</a> &lt;i&gt;')


def test_who_calls_whom_is_drawn_inline_with_its_table():
    page = render_html(oslo_catalog())
    svg = re.search(r'<svg class="calls".*?</svg>', page, re.S)
    assert svg is not None
    assert svg.group(0).count("<line ") == 2
    assert "<td>nova-conductor</td><td>(compute consumers)</td>" \
           "<td>attach_volume, detach_volume, reboot, refresh_cache</td>" in page
    assert "<summary>Mermaid source</summary>" in page


def pdf_pages(pdf: bytes) -> int:
    """Pages of a Chromium PDF: the largest /Count of its page tree."""
    return max(int(n) for n in re.findall(rb"/Count (\d+)", pdf))


@needs_chromium
def test_printing_shows_every_section_even_when_filtered(tmp_path, page):
    counts = []
    for i, fragment in enumerate(("", "#q=detach")):
        pdf = tmp_path / f"print{i}.pdf"
        chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                 page.as_uri() + fragment)
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-")
        counts.append(pdf_pages(data))
    assert counts[0] > 3
    assert counts[1] == counts[0]
