"""The results site: static HTML pages built from the workflow's own files (docs/output-contract.md).

``results/site/`` works on its own, offline and from ``file://``: every page is plain HTML with the same
small inline stylesheet and script (no CDN, no template engine), every figure is copied into ``img/`` and
every source table into ``data/`` (relative links only). Pages:

* ``index.html`` — the leaderboard of each modality (``results/summary/{modality}.tsv``: sortable by any
  column, filterable by family and control role; controls marked), its summary and critical-difference
  figures, and links to everything else;
* ``dataset_{dataset}.html`` — the dataset's scores (``{modality}_scores.tsv``), UMAP grid, QC summary
  (``uns['preprocess']`` of ``results/data/{dataset}/preprocessed.h5ad``), metric table (``all.tsv``, each
  NaN with its reason), failed runs (``failures.tsv``) and how each neural training ended
  (``convergence.tsv``);
* ``comparison_{comparison}.html`` — the family's paired-test table (``results/stats/{comparison}.tsv``: the
  ``test`` column is the decision path taken), its α and settings, and its figures;
* ``fairness.html`` (``results/stats/fairness.tsv``) and ``cost.html`` (``results/benchmarks/rules.tsv``).

Numbers are shown with 4 significant digits; the exact value of every numeric cell is its ``data-value``
(what sorting uses) and the copied TSV. Every string from a file is escaped (``html.escape``).
"""
from __future__ import annotations

import html
import math
import os
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from .methods.controls import CONTROLS
from .results import METRIC_GROUPS, read_metrics

NA = "NA"
LONG_TEXT = 40  # characters: a longer text cell wraps (reasons, settings) instead of widening its table
MODALITY_TITLES = {"rna": "scRNA-seq", "atac": "scATAC-seq"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#fff}
header{background:#20304a;color:#fff;padding:.6rem 1.2rem}
header a{color:#dfe8f7;margin-right:1rem;text-decoration:none}header a:hover{text-decoration:underline}
header .brand{font-weight:700;color:#fff}
nav.sub{font-size:.85rem;margin-top:.3rem;color:#b9c6dc}nav.sub a{margin-right:.7rem}
main{padding:1rem 1.4rem;max-width:1500px}
h1{font-size:1.5rem;margin:.4rem 0 .8rem}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d8dde6}
p.note{color:#4a5566;font-size:.9rem;max-width:75rem}
.scroll{overflow-x:auto;max-width:100%;width:fit-content;border:1px solid #d8dde6}
table{border-collapse:collapse;font-size:.82rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e6e9ef;text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f1f4f9;position:sticky;top:0;cursor:pointer;user-select:none;white-space:normal;vertical-align:bottom}
td.wrap{white-space:normal;min-width:14rem;max-width:34rem}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.na{color:#98a1b0}td.na[title]{cursor:help;text-decoration:underline dotted}
tr.control td{background:#fbf7ea}tr.control-negative td{background:#fcefef}tr.control-positive td{background:#eef8ef}
span.badge{font-size:.7rem;border-radius:.6rem;padding:0 .4rem;margin-left:.3rem;background:#e4e7ee;color:#333}
span.badge.negative{background:#f3c9c9}span.badge.positive{background:#c6e8c9}
tr.flag td{background:#fff1d6}td.sig{font-weight:700}
.bar{display:inline-block;height:.55rem;background:#6b8fd6;margin-right:.35rem;vertical-align:middle}
.filters{margin:.4rem 0;font-size:.85rem}.filters label{margin-right:1rem}
.count{color:#4a5566;font-size:.8rem;margin-left:.5rem}
figure{margin:.6rem 0}figure img{max-width:100%;border:1px solid #d8dde6}
figcaption{font-size:.85rem;color:#4a5566}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;font-size:.85rem}dl.kv dt{font-weight:600}
ul.cards{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.6rem}
ul.cards li{border:1px solid #d8dde6;border-radius:.3rem;padding:.5rem .8rem;font-size:.85rem}
"""

# Sorting: a header click orders the rows by that column (numbers by data-value; missing values last in
# both directions; ties keep their current order). Filters: each <select> keeps the rows whose cell in its
# column equals the chosen value.
JS = """
(function(){
  function key(cell){var v=cell.getAttribute('data-value');return v===null?cell.textContent.trim():v;}
  function sortBy(th){
    var row=th.parentNode,table=th.closest('table'),body=table.tBodies[0];
    var col=Array.prototype.indexOf.call(row.children,th);
    var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
    Array.prototype.forEach.call(row.children,function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',dir);
    var num=th.getAttribute('data-type')==='number',sign=dir==='ascending'?1:-1;
    Array.prototype.map.call(body.rows,function(r,i){return {r:r,i:i,k:key(r.cells[col])};})
      .sort(function(a,b){
        var ea=a.k==='',eb=b.k==='';
        if(ea||eb){return ea===eb?a.i-b.i:(ea?1:-1);}
        var c=num?parseFloat(a.k)-parseFloat(b.k):a.k.localeCompare(b.k);
        return c?sign*c:a.i-b.i;})
      .forEach(function(o){body.appendChild(o.r);});
  }
  function applyFilters(box){
    var table=document.getElementById(box.getAttribute('data-table')),shown=0;
    var sels=box.querySelectorAll('select');
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      var keep=Array.prototype.every.call(sels,function(s){
        return s.value===''||key(r.cells[parseInt(s.getAttribute('data-column'),10)])===s.value;});
      r.hidden=!keep;if(keep){shown++;}
    });
    var count=box.querySelector('.count');
    if(count){count.textContent=shown+' of '+table.tBodies[0].rows.length+' rows';}
  }
  document.querySelectorAll('table.sortable th').forEach(function(th){
    th.addEventListener('click',function(){sortBy(th);});
    th.title=th.title||'sort by this column';
  });
  document.querySelectorAll('.filters').forEach(function(box){
    box.querySelectorAll('select').forEach(function(s){s.addEventListener('change',function(){applyFilters(box);});});
  });
})();
"""


# ------------------------------------------------------------------------------------------- values


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() in ("", NA)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value) -> str:
    """A number as shown: 4 significant digits (integers in full); NA for a missing value."""
    if is_missing(value):
        return NA
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v.is_integer() and abs(v) < 1e12:
            return str(int(v))
        return f"{v:.4g}"
    return str(value)


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def control_of(method: str) -> str:
    return CONTROLS.get(str(method), "none")


# ------------------------------------------------------------------------------------------- HTML


def _td(value, *, numeric: bool, title: str | None = None, bar: bool = False, cls: str = "") -> str:
    classes = []
    attrs = ""
    if is_missing(value):
        classes.append("na")
        attrs = ' data-value=""'
        text = NA
    elif numeric:
        classes.append("num")
        v = float(value)
        attrs = f' data-value="{esc(repr(v))}"'
        text = esc(fmt(value))
        if bar and np.isfinite(v):
            width = max(0.0, min(1.0, v)) * 3
            text = f'<span class="bar" style="width:{width:.2f}rem"></span>{text}'
    else:
        attrs = f' data-value="{esc(value)}"'
        text = esc(value)
        if len(str(value)) > LONG_TEXT:
            classes.append("wrap")
    if title:
        attrs += f' title="{esc(title)}"'
    classes += [cls] if cls else []
    cls_attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls_attr}{attrs}>{text}</td>"


def html_table(table: pd.DataFrame, *, table_id: str, headers: Mapping[str, str] | None = None,
               header_titles: Mapping[str, str] | None = None, filters: Sequence[str] = (),
               method_column: str | None = "method", bars: Sequence[str] = (),
               cell_titles: Mapping[tuple[int, str], str] | None = None,
               cell_classes: Mapping[tuple[int, str], str] | None = None,
               row_classes: Sequence[str] | None = None, links: Mapping[str, Mapping[str, str]] | None = None,
               empty: str = "No rows.") -> str:
    """A sortable table (every column), with a <select> filter per column of ``filters``.

    ``method_column``: its rows are marked as controls (row class, badge); ``bars``: numeric columns on a
    0–1 scale drawn with a bar; ``cell_titles``: {(row position, column): hover text} (e.g. the reason of a
    NaN); ``cell_classes``: {(row position, column): CSS class}; ``links``: {column: {cell value: href}}.
    """
    if table.empty:
        return f'<p class="note">{esc(empty)}</p>'
    headers, header_titles = headers or {}, header_titles or {}
    cell_titles, cell_classes, links = cell_titles or {}, cell_classes or {}, links or {}
    columns = list(table.columns)
    numeric = {c: _numeric(table[c]) for c in columns}
    parts = []
    if filters:
        parts.append(f'<div class="filters" data-table="{esc(table_id)}">')
        for column in filters:
            values = sorted({str(v) for v in table[column] if not is_missing(v)})
            options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
            parts.append(f'<label>{esc(headers.get(column, column))}: <select data-column="{columns.index(column)}" '
                         f'name="{esc(column)}"><option value="">all</option>{options}</select></label>')
        parts.append(f'<span class="count">{len(table)} of {len(table)} rows</span></div>')
    head = "".join(
        f'<th data-column="{esc(c)}"' + (' data-type="number"' if numeric[c] else "")
        + (f' title="{esc(header_titles[c])}"' if c in header_titles else "") + f">{esc(headers.get(c, c))}</th>"
        for c in columns)
    rows = []
    for pos, record in enumerate(table.itertuples(index=False, name=None)):
        classes = [row_classes[pos]] if row_classes and row_classes[pos] else []
        cells = []
        for column, value in zip(columns, record):
            title = cell_titles.get((pos, column))
            if column == method_column and not is_missing(value):
                role = control_of(value)
                badge = ""
                if role != "none":
                    classes += ["control", f"control-{role}"]
                    badge = f'<span class="badge {esc(role)}">{esc(role)} control</span>'
                href = links.get(column, {}).get(str(value))
                name = f'<a href="{esc(href)}">{esc(value)}</a>' if href else esc(value)
                cells.append(f'<td data-value="{esc(value)}">{name}{badge}</td>')
            elif column in links and str(value) in links[column]:
                cells.append(f'<td data-value="{esc(value)}"><a href="{esc(links[column][str(value)])}">'
                             f"{esc(value)}</a></td>")
            else:
                cells.append(_td(value, numeric=numeric[column], title=title, bar=column in bars,
                                 cls=cell_classes.get((pos, column), "")))
        cls = f' class="{" ".join(dict.fromkeys(classes))}"' if classes else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    parts.append(f'<div class="scroll"><table class="sortable" id="{esc(table_id)}"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{''.join(rows)}</tbody></table></div>")
    return "\n".join(parts)


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(fmt(v))}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def figure(src: str | None, caption: str, missing: str) -> str:
    if not src:
        return f'<p class="note">{esc(missing)}</p>'
    return (f'<figure><a href="{esc(src)}"><img src="{esc(src)}" alt="{esc(caption)}"></a>'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def data_link(href: str | None, label: str) -> str:
    return f'<p class="note">Source table: <a href="{esc(href)}">{esc(label)}</a></p>' if href else ""


# ------------------------------------------------------------------------------------------- inputs


def read_table(path: str | Path | None) -> pd.DataFrame:
    """A TSV of the workflow (``NA`` = missing); an absent or empty file gives an empty table."""
    if not path or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return pd.DataFrame()
    table = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["NA", "NaN", "nan", ""])
    for column in table.columns:  # flags as the file writes them (pandas reads true/false as booleans)
        if table[column].dtype == bool or table[column].dtype == object:
            table[column] = table[column].map(lambda v: str(v).lower() if isinstance(v, (bool, np.bool_)) else v)
    return table


def read_qc(path: str | Path | None) -> dict:
    """What preprocessing recorded: ``uns['preprocess']``, ``uns['livaebench']`` and the label / batch
    column sizes of ``preprocessed.h5ad``, read without loading the matrices."""
    if not path or not Path(path).is_file():
        return {}
    import h5py

    try:
        from anndata.io import read_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import read_elem
    out: dict = {}
    with h5py.File(path, "r") as handle:
        uns = handle.get("uns")
        for key in ("livaebench", "preprocess"):
            if uns is not None and key in uns:
                out[key] = read_elem(uns[key])
        info = out.get("livaebench", {})
        for role in ("label_key", "batch_key"):
            column = info.get(role) or ""
            if column and "obs" in handle and column in handle["obs"]:
                values = pd.Series(np.asarray(read_elem(handle["obs"][column])))
                out[f"{role}_counts"] = values.astype(str).value_counts().sort_index()
    return out


def qc_pairs(qc: Mapping) -> list[tuple[str, object]]:
    pre, info = dict(qc.get("preprocess", {})), dict(qc.get("livaebench", {}))
    pairs: list[tuple[str, object]] = []
    if "n_cells_input" in pre:
        pairs.append(("cells (input → kept)", f"{fmt(pre['n_cells_input'])} → {fmt(pre.get('n_cells'))}"))
    if "fraction_cells_removed" in pre:
        pairs.append(("fraction of cells removed", f"{float(pre['fraction_cells_removed']):.1%}"))
    if "n_features_input" in pre:
        pairs.append(("features (input → selected; requested)",
                      f"{fmt(pre['n_features_input'])} → {fmt(pre.get('n_features'))}; "
                      f"{fmt(pre.get('n_features_requested'))}"))
    shown = {"n_cells_input", "n_cells", "fraction_cells_removed", "n_features_input", "n_features",
             "n_features_requested", "warnings"}
    pairs += [(k.replace("_", " "), v) for k, v in pre.items() if k not in shown]
    for role, title in (("label_key", "labels"), ("batch_key", "batches")):
        counts = qc.get(f"{role}_counts")
        if info.get(role):
            detail = "" if counts is None else f": {len(counts)} values (" + ", ".join(
                f"{k} {v}" for k, v in counts.items()) + ")"
            pairs.append((title, f"column '{info[role]}'{detail}"))
    if info.get("label_note"):
        pairs.append(("label note", info["label_note"]))
    warnings = [str(w) for w in np.atleast_1d(pre.get("warnings", [])) if str(w).strip()]
    pairs.append(("QC warnings", "; ".join(warnings) if warnings else "none"))
    return pairs


# ------------------------------------------------------------------------------------------- the site


class Site:
    """Collects copied files and pages under ``root`` (a fresh folder)."""

    def __init__(self, root: Path, nav: list[tuple[str, str]], subnav: list[tuple[str, list[tuple[str, str]]]]):
        self.root, self.nav, self.subnav = root, nav, subnav
        (root / "img").mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)

    def copy(self, source: str | Path | None, folder: str, name: str) -> str | None:
        """Copy ``source`` to ``folder/name``; the relative href, or None if there is no such file."""
        if not source or not Path(source).is_file():
            return None
        shutil.copyfile(source, self.root / folder / name)
        return f"{folder}/{quote(name)}"

    def page(self, name: str, title: str, body: str) -> None:
        nav = "".join(f'<a href="{esc(h)}">{esc(t)}</a>' for h, t in self.nav)
        sub = " ".join(f'{esc(label)}: ' + "".join(f'<a href="{esc(h)}">{esc(t)}</a>' for h, t in links)
                       for label, links in self.subnav if links)
        text = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<link rel="icon" href="data:,"><title>{esc(title)} · LiVAE benchmark</title>'
                f"<style>{CSS}</style></head><body>"
                f'<header><span class="brand">LiVAE benchmark</span> {nav}<nav class="sub">{sub}</nav></header>'
                f"<main><h1>{esc(title)}</h1>\n{body}\n</main><script>{JS}</script></body></html>\n")
        (self.root / name).write_text(text, encoding="utf-8")


def dataset_page_name(dataset: str) -> str:
    return f"dataset_{dataset}.html"


def comparison_page_name(comparison: str) -> str:
    return f"comparison_{comparison}.html"


def _category_titles() -> dict[str, str]:
    try:
        from .summary import CATEGORIES
    except ImportError:
        return {}
    return {slug: title for slug, (title, _) in CATEGORIES.items()}


def leaderboard_html(modality: str, board: pd.DataFrame) -> str:
    titles = _category_titles()
    headers = {c: titles.get(c.removeprefix("score_"), c) for c in board.columns if c.startswith("score_")}
    headers.update(n_datasets="datasets", mean_rank="mean rank")
    order = [c for c in ("rank", "method", "family", "control") if c in board] + \
        [c for c in board.columns if c not in ("rank", "method", "family", "control")]
    bars = [c for c in board.columns if c.startswith("score_") or c == "overall"]
    filters = [c for c in ("family", "control") if c in board]
    return html_table(board[order], table_id=f"leaderboard-{modality}", headers=headers, filters=filters, bars=bars,
                      header_titles={c: f"column {c} of results/summary/{modality}.tsv" for c in board.columns})


def scores_wide(scores: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One dataset's category scores and overall score per method, from the long scores table."""
    if scores.empty or "dataset" not in scores:
        return pd.DataFrame()
    rows = scores[(scores["dataset"].astype(str) == dataset) & scores["metric"].isin(["category", "overall"])]
    if rows.empty:
        return pd.DataFrame()
    wide = rows.drop_duplicates(["method", "category"]).set_index(["method", "family", "control", "category"])[
        "scaled"].unstack("category")
    titles = _category_titles()
    ordered = [c for c in titles if c in wide.columns] + [c for c in wide.columns if c not in titles and c != "overall"]
    wide = wide[ordered + (["overall"] if "overall" in wide.columns else [])]
    wide = wide.reset_index()
    wide.columns.name = None
    return wide.sort_values("overall", ascending=False, kind="stable") if "overall" in wide else wide


def metrics_wide(metrics: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, dict, list[tuple]]:
    """A dataset's metrics as method × metric (one row per seed), the reasons of its NaN cells by position,
    and the (metric, runs, reason) list of undefined values."""
    rows = metrics[(metrics["dataset"].astype(str) == dataset) & metrics["metric"].notna()]
    if rows.empty:
        return pd.DataFrame(), {}, []
    order = [m for group in METRIC_GROUPS.values() for m in group]
    names = list(dict.fromkeys(rows["metric"].astype(str)))
    columns = [m for m in order if m in names] + sorted(m for m in names if m not in order)
    wide = (rows.drop_duplicates(["method", "seed", "metric"]).set_index(["method", "seed", "metric"])["value"]
            .unstack("metric").reindex(columns=columns).sort_index().reset_index())
    wide.columns.name = None
    reasons = rows.assign(reason=rows["reason"].fillna("").astype(str)) if "reason" in rows else rows.assign(reason="")
    undefined = reasons[reasons["value"].isna() & (reasons["reason"].str.strip() != "")]
    position = {(m, s): i for i, (m, s) in enumerate(zip(wide["method"], wide["seed"]))}
    titles = {(position[(r.method, r.seed)], r.metric): r.reason for r in undefined.itertuples()}
    listed = []
    for (metric, reason), group in undefined.groupby(["metric", "reason"], sort=True):
        runs = ", ".join(f"{m}/seed{s}" for m, s in zip(group["method"], group["seed"]))
        listed.append((metric, runs, reason))
    return wide, titles, listed


def _where(table: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    if table.empty or column not in table:
        return table.iloc[0:0]
    return table[table[column].astype(str) == value].reset_index(drop=True)


def default_alpha() -> float:
    """The α of the paired tests: ``livaebench.stats.compare``'s (the rule compare does not change it)."""
    import inspect

    from .stats import compare

    return float(inspect.signature(compare).parameters["alpha"].default)


def build_site(out_dir: str | Path, *, datasets: Mapping[str, Mapping], modalities: Mapping[str, Mapping],
               comparisons: Mapping[str, Mapping], tables: Mapping[str, str], archive: str | Path | None = None,
               ) -> list[str]:
    """Write the site into ``out_dir`` (replaced as a whole) and optionally zip it to ``archive``.

    ``datasets``: {dataset: {modality, label_key, batch_key, umap (png), preprocessed (h5ad)}};
    ``modalities``: {modality: {table, scores, figure, cd}} (the summary files; a modality without data has
    absent or empty files); ``comparisons``: {comparison: {stats (tsv), figures ({name: png}), spec (the
    comparison family)}}; ``tables``: {metrics, failures, convergence, fairness, costs} (paths).
    Returns the names of the pages written.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    nav = [("index.html", "Leaderboards"), ("fairness.html", "Fairness"), ("cost.html", "Cost per rule")]
    subnav = [("Datasets", [(dataset_page_name(d), d) for d in datasets]),
              ("Comparisons", [(comparison_page_name(c), c) for c in comparisons])]
    site = Site(tmp, nav, subnav)
    pages = []

    data = {key: site.copy(path, "data", Path(path).name) for key, path in tables.items()}
    metrics = read_metrics(tables["metrics"]) if tables.get("metrics") and Path(tables["metrics"]).is_file() \
        else pd.DataFrame(columns=["dataset", "method", "seed", "metric", "value"])
    failures, convergence = read_table(tables.get("failures")), read_table(tables.get("convergence"))
    ordered = sorted(modalities, key=lambda m: list(MODALITY_TITLES).index(m) if m in MODALITY_TITLES else 99)
    summary = {m: {"board": read_table(modalities[m].get("table")), "scores": read_table(modalities[m].get("scores")),
                   "files": modalities[m]} for m in ordered}

    # ---- index: leaderboards, then the way to every other page
    body = ['<p class="note">Every number on these pages is read from the workflow\'s own output files '
            "(linked as source tables). Methods are scaled per dataset between the controls (0 = negative, "
            "1 = positive control) as described in docs/methods.md; controls are shaded and never ranked. "
            "Click a column header to sort; choose a family to filter.</p>"]
    for modality, info in summary.items():
        title = MODALITY_TITLES.get(modality, modality)
        body.append(f'<h2 id="leaderboard-{esc(modality)}-section">Leaderboard: {esc(title)}</h2>')
        board = info["board"]
        if board.empty:
            body.append(f'<p class="note">No {esc(title)} dataset has a summary in this run.</p>')
            continue
        body.append(leaderboard_html(modality, board))
        files = info["files"]
        body.append(data_link(site.copy(files.get("table"), "data", f"summary_{modality}.tsv"),
                              f"results/summary/{modality}.tsv"))
        body.append(data_link(site.copy(files.get("scores"), "data", f"summary_{modality}_scores.tsv"),
                              f"results/summary/{modality}_scores.tsv (per dataset and metric)"))
        body.append(figure(site.copy(files.get("figure"), "img", f"summary_{modality}.png"),
                           f"{title}: every method × metric category (results/summary/{modality}.png)",
                           "No summary figure."))
        body.append(figure(site.copy(files.get("cd"), "img", f"summary_{modality}_cd.png"),
                           f"{title}: mean ranks with the critical difference (results/summary/{modality}_cd.png)",
                           "No critical-difference diagram."))

    body.append("<h2>Datasets</h2>")
    items = []
    for name, row in datasets.items():
        n_methods = metrics.loc[metrics["dataset"].astype(str) == name, "method"].nunique()
        n_failed = len(_where(failures, "dataset", name))
        items.append(f'<li><a href="{esc(dataset_page_name(name))}">{esc(name)}</a><br>'
                     f"{esc(MODALITY_TITLES.get(row.get('modality'), row.get('modality')))}; {n_methods} methods; "
                     f"{n_failed} failed run(s)</li>")
    body.append(f'<ul class="cards">{"".join(items)}</ul>' if items else '<p class="note">No dataset.</p>')
    body.append("<h2>Comparison families (paired tests)</h2>")
    items = []
    for name, info in comparisons.items():
        spec = info.get("spec") or {}
        items.append(f'<li><a href="{esc(comparison_page_name(name))}">{esc(name)}</a><br>'
                     f"{esc(spec.get('reference', ''))} vs {esc(', '.join(spec.get('baselines', [])))}</li>")
    body.append(f'<ul class="cards">{"".join(items)}</ul>' if items else
                '<p class="note">No comparison family in this run.</p>')
    body.append("<h2>Tables of the whole run</h2><ul>" + "".join(
        f'<li><a href="{esc(href)}">{esc(label)}</a></li>' for href, label in [
            (data.get("metrics"), "results/metrics/all.tsv — every metric of every run"),
            (data.get("failures"), "results/metrics/failures.tsv — failed runs"),
            (data.get("convergence"), "results/metrics/convergence.tsv — how every neural training ended"),
            ("fairness.html", "fairness: each method's settings and budget against its original's"),
            ("cost.html", "wall time and memory per rule"),
        ] if href) + "</ul>")
    site.page("index.html", "Results at a glance", "\n".join(body))
    pages.append("index.html")

    # ---- one page per dataset
    for name, row in datasets.items():
        modality = str(row.get("modality", ""))
        body = [key_values([("modality", MODALITY_TITLES.get(modality, modality)),
                            ("label column", row.get("label_key") or "none"),
                            ("batch column", row.get("batch_key") or "none")])]
        scores = scores_wide(summary.get(modality, {}).get("scores", pd.DataFrame()), name)
        body.append("<h2>Scores on this dataset</h2>")
        titles = _category_titles()
        body.append(html_table(scores, table_id=f"scores-{name}", headers=titles, filters=["family"],
                               bars=[c for c in scores.columns if c in titles or c == "overall"],
                               empty="No summary scores for this dataset."))
        body.append(f'<p class="note">Category and overall scores from results/summary/{esc(modality)}_scores.tsv '
                    "(rows with metric 'category' and 'overall').</p>")
        body.append("<h2>Embeddings</h2>")
        body.append(figure(site.copy(row.get("umap"), "img", f"umap_{name}.png"),
                           f"{name}: every method's UMAP, coloured by label and batch "
                           f"(results/figures/umap/{name}.png)",
                           "No UMAP grid."))
        body.append("<h2>Quality control</h2>")
        qc = read_qc(row.get("preprocessed"))
        body.append(key_values(qc_pairs(qc)) if qc else '<p class="note">No preprocessing record.</p>')
        body.append(f'<p class="note">From uns[\'preprocess\'] of results/data/{esc(name)}/preprocessed.h5ad.</p>')
        body.append("<h2>Metrics</h2>")
        wide, nan_titles, undefined = metrics_wide(metrics, name)
        group_of = {m: g for g, ms in METRIC_GROUPS.items() for m in ms}
        body.append(html_table(wide, table_id=f"metrics-{name}", cell_titles=nan_titles,
                               header_titles={c: group_of[c] for c in wide.columns if c in group_of},
                               empty="No metric rows for this dataset."))
        if undefined:
            table = pd.DataFrame(undefined, columns=["metric", "runs", "reason"])
            body.append("<h3>Why a value is NA</h3>")
            body.append(html_table(table, table_id=f"undefined-{name}", method_column=None))
        body.append(data_link(data.get("metrics"), "results/metrics/all.tsv"))
        body.append("<h2>Failed runs</h2>")
        body.append(html_table(_where(failures, "dataset", name), table_id=f"failures-{name}",
                               empty="No run failed on this dataset."))
        body.append("<h2>Convergence</h2>")
        conv = _where(convergence, "dataset", name)
        flags = ["flag" if str(v).lower() == "true" else "" for v in conv.get("under_trained", [])]
        body.append(html_table(conv, table_id=f"convergence-{name}", row_classes=flags, filters=["method"],
                               empty="No neural training on this dataset."))
        if flags:
            body.append(f'<p class="note">{flags.count("flag")} training phase(s) flagged under-trained (shaded): '
                        "stopped at the epoch limit while still improving (results/metrics/convergence.tsv).</p>")
        page = dataset_page_name(name)
        site.page(page, f"Dataset {name}", "\n".join(body))
        pages.append(page)

    # ---- one page per comparison family
    alpha = default_alpha()
    for name, info in comparisons.items():
        spec = dict(info.get("spec") or {})
        stats = read_table(info.get("stats"))
        a = float(spec.get("alpha", alpha))
        body = [key_values([("figure of the paper", spec.get("figure") or "none (a configured family)"),
                            ("reference", spec.get("reference", "")),
                            ("baselines", ", ".join(spec.get("baselines", []))),
                            ("datasets", ", ".join(spec.get("datasets", []))),
                            ("test", spec.get("test", "")), ("multiple-testing correction", spec.get("correction", "")),
                            ("α", a)])]
        body.append('<p class="note">The <b>test</b> column is the decision path each metric took '
                    "(docs/methods.md §4): Shapiro–Wilk on the paired differences at α, then repeated-measures "
                    "ANOVA + Tukey, or Friedman + Wilcoxon with Bonferroni, or Wilcoxon for one baseline; "
                    "'insufficient' says why no test was possible. Rows with p &lt; α are bold; δ = reference − "
                    "baseline (mean over datasets).</p>")
        body.append("<h2>Paired tests</h2>")
        significant = {(i, "p_value"): "sig" for i, p in enumerate(stats.get("p_value", []))
                       if not is_missing(p) and float(p) < a}
        body.append(html_table(stats, table_id=f"stats-{name}", method_column="baseline", cell_classes=significant,
                               filters=[c for c in ("metric", "baseline", "test") if c in stats],
                               empty="The stats table is empty."))
        body.append(data_link(site.copy(info.get("stats"), "data", f"stats_{name}.tsv"), f"results/stats/{name}.tsv"))
        body.append("<h2>Figures</h2>")
        for plot, path in (info.get("figures") or {}).items():
            body.append(figure(site.copy(path, "img", f"{name}_{plot}.png"),
                               f"{name}: {plot} (results/figures/{name}/{plot}.png)", f"No {plot} figure."))
        page = comparison_page_name(name)
        site.page(page, f"Comparison {name}", "\n".join(body))
        pages.append(page)

    # ---- fairness and cost
    fairness = read_table(tables.get("fairness"))
    site.page("fairness.html", "Fairness: each method against its original", "\n".join([
        '<p class="note">Settings and training budget of each method in this run beside its original\'s '
        "(results/stats/fairness.tsv; docs/baselines.md has the declared deviations and their reasons).</p>",
        html_table(fairness, table_id="fairness", filters=[c for c in ("family",) if c in fairness],
                   empty="No fairness table."),
        data_link(data.get("fairness"), "results/stats/fairness.tsv")]))
    costs = read_table(tables.get("costs"))
    site.page("cost.html", "Cost per rule", "\n".join([
        '<p class="note">Wall time (seconds) and peak resident memory (MB) per rule, from every job\'s '
        "Snakemake benchmark file (results/benchmarks/rules.tsv).</p>",
        html_table(costs, table_id="cost", method_column=None, empty="No benchmark table."),
        data_link(data.get("costs"), "results/benchmarks/rules.tsv")]))
    pages += ["fairness.html", "cost.html"]

    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    if archive:
        write_archive(out_dir, archive)
    return pages


def write_archive(site_dir: str | Path, archive: str | Path) -> None:
    """Zip the site folder (paths inside start with the folder's name), atomically."""
    site_dir, archive = Path(site_dir), Path(archive)
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(site_dir.rglob("*")):
            if path.is_file():
                handle.write(path, Path(site_dir.name) / path.relative_to(site_dir))
    os.replace(tmp, archive)
