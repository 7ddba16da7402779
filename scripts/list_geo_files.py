"""Rule list_geo_files: a GEO series' supplementary files, their sizes, their kinds and which ones the layout
choice (pattern auto) or the registry's regex selects, before anything is downloaded (only the SOFT text, and
where the choice needs it an archive's member list, is fetched)."""
from livaebench.runtime import step


def human(size: int | None) -> str:
    if size is None:
        return "?"
    size = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


with step(snakemake.log[0]) as log:
    import pandas as pd

    from livaebench.data.geo import fetch_options, list_geo_files
    from livaebench.errors import InputError
    from livaebench.results import write_tsv_atomic

    dataset, params = snakemake.wildcards.dataset, snakemake.params
    if params.source != "geo" or not params.accession:
        raise InputError(f"dataset '{dataset}'", f"is not a GEO dataset (source: {params.source})",
                         "list_geo_files lists the supplementary files of registry rows with source: geo")
    options = fetch_options(snakemake.config.get("geo", {}))
    options["base_url"] = params.base_url
    table = list_geo_files(params.accession, dataset=dataset, pattern=params.pattern, samples=params.samples,
                           **options)
    write_tsv_atomic(table, snakemake.output[0])

    files = table[table["archive"] == ""]  # listed files (members of archives come after their archive)
    chosen = files[files["selected"] == "yes"]
    known = chosen["bytes"].dropna()
    sizes = [f"{human(int(known.sum()))} to download"] if len(known) else []
    sizes += [f"{len(chosen) - len(known)} of unknown size"] if len(known) < len(chosen) else []
    how = f"the layout choice (pattern auto): {table.attrs['layout']}" if table.attrs.get("layout") else \
        f"pattern '{params.pattern}'"
    log.info("%s (%s): %d supplementary files; %d selected by %s%s", dataset, params.accession,
             len(files), len(chosen), how, f" ({', '.join(sizes)})" if sizes else "")
    if len(table):
        columns = {  # name -> (values, right-aligned)
            "selected": (list(table["selected"]), False),
            "size": ([human(None if pd.isna(b) else int(b)) for b in table["bytes"]], True),
            "sample": ([s or "(series)" for s in table["sample"]], False),
            "file": ([f"  {a}/{f}" if a else f for a, f in zip(table["archive"], table["file"])], False),
            "kind": (list(table["kind"]), False),
            "note": (list(table["note"]), False),
        }
        widths = {name: max(len(name), *map(len, values)) for name, (values, _) in columns.items()}

        def line(cells: dict) -> str:
            return "  ".join(cells[n].rjust(widths[n]) if right else cells[n].ljust(widths[n])
                             for n, (_, right) in columns.items()).rstrip()

        log.info("  %s", line({n: n for n in columns}))
        for i in range(len(table)):
            log.info("  %s", line({n: values[i] for n, (values, _) in columns.items()}))
    if table.attrs.get("problem"):
        log.warning("%s: fetch_geo would stop: %s", dataset, table.attrs["problem"])
    elif chosen.empty:
        log.warning("%s: the pattern selects no file: fetch_geo would stop; change the pattern in the registry",
                    dataset)
    log.info("wrote %s", snakemake.output[0])
