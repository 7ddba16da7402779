"""The results site in a real headless Chromium (Debian's ``chromium``, driven by Playwright without a browser
download): every page from file:// without a console error, every local link and image resolving, sorting and
filtering as a person would use them, and a screenshot of each page type."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or next((p for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None)


@contextmanager
def browser() -> Iterator:
    """A headless Chromium; the test skips (with the reason) when no chromium binary is installed."""
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium binary: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # the system's Chromium, so Playwright downloads nothing; no sandbox, as root in a container
        chrome = pw.chromium.launch(executable_path=path, headless=True, chromium_sandbox=False)
        try:
            yield chrome
        finally:
            chrome.close()


def page_type(name: str) -> str:
    return name.split("_", 1)[0].removesuffix(".html")  # index, dataset, comparison, fairness, cost


def open_page(chrome, path: Path, width: int = 1400):
    """A page loaded from file://, with the console errors, page errors and failed requests it caused."""
    page = chrome.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, problems


def crawl(chrome, site: Path, shots: Path) -> dict[str, list[str]]:
    """Visit every page reachable from index.html; check it and save one screenshot per page type.

    Returns {page name: the local hrefs on it}."""
    shots.mkdir(parents=True, exist_ok=True)
    todo, seen, shot_types = ["index.html"], {}, set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        page, problems = open_page(chrome, site / name)
        assert page.title(), name
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        local = []
        for href in hrefs:
            parsed = urlparse(href)
            assert not parsed.scheme and not parsed.netloc, f"{name}: external link {href} (the site must work offline)"
            if not parsed.path:
                continue  # an anchor on the same page
            target = (site / name).parent / unquote(parsed.path)
            assert target.is_file(), f"{name}: link {href} resolves to nothing"
            assert site.resolve() in target.resolve().parents, f"{name}: link {href} leaves the site folder"
            local.append(unquote(parsed.path))
            if target.suffix == ".html":
                todo.append(unquote(parsed.path))
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.getAttribute('src'), e.complete ? e.naturalWidth : 0])")
        for src, width in images:
            assert width > 0, f"{name}: image {src} did not load"
        scripts = page.eval_on_selector_all("script[src], link[rel=stylesheet]", "els => els.length")
        assert scripts == 0, f"{name}: external script or stylesheet"
        kind = page_type(name)
        if kind not in shot_types:
            page.screenshot(path=str(shots / f"{kind}.png"), full_page=True)
            shot_types.add(kind)
        assert not problems, f"{name}: {problems}"
        seen[name] = local
        page.close()
    return seen


def column_values(page, table_id: str, column: str, visible_only: bool = True) -> list[str]:
    """The data-value of ``column``'s cell in every (visible) body row, in the order shown."""
    return page.evaluate(
        """([id, column, visibleOnly]) => {
             const table = document.getElementById(id);
             const heads = Array.from(table.tHead.rows[0].cells).map(c => c.getAttribute('data-column'));
             const i = heads.indexOf(column);
             return Array.from(table.tBodies[0].rows).filter(r => !visibleOnly || !r.hidden)
                         .map(r => r.cells[i].getAttribute('data-value'));
           }""", [table_id, column, visible_only])


def expected_sort(values: pd.Series, ascending: bool) -> list[str]:
    """The order the site's sort must give a numeric column: by value, missing values last, ties stable."""
    keyed = [(pd.isna(v), v if not pd.isna(v) else 0.0, i) for i, v in enumerate(values)]
    finite = sorted((k for k in keyed if not k[0]), key=lambda k: (k[1] if ascending else -k[1], k[2]))
    return [repr(float(k[1])) for k in finite] + ["" for k in keyed if k[0]]


def check_sort(page, table_id: str, column: str, shown: pd.Series) -> None:
    """Click ``column``'s header twice: ascending, then descending; ``shown``: the column as the table
    lists it as written (the TSV's order; the page is reloaded first)."""
    page.reload(wait_until="load")
    before = column_values(page, table_id, column)
    assert before == [repr(float(v)) if not pd.isna(v) else "" for v in shown]
    header = page.locator(f"#{table_id} th[data-column='{column}']")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = column_values(page, table_id, column)
    assert ascending == expected_sort(shown, ascending=True)
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    descending = column_values(page, table_id, column)
    assert descending == expected_sort(shown, ascending=False)
    if len(set(before) - {""}) > 1:  # the rows moved (one of the two orders differs from the written one)
        assert ascending != before or descending != before


def check_family_filter(page, table_id: str, family: str, n_rows: int) -> None:
    select = page.locator(f".filters[data-table='{table_id}'] select[name='family']")
    select.select_option(family)
    families = column_values(page, table_id, "family")
    assert families and set(families) == {family}
    assert len(families) < n_rows  # the other families are hidden
    assert len(column_values(page, table_id, "family", visible_only=False)) == n_rows
    select.select_option("")
    assert len(column_values(page, table_id, "family")) == n_rows
