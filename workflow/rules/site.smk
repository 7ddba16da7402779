# The results site (livaebench.site): static pages that work offline from the file system, built from the
# workflow's own tables and figures, and its zip for the Snakemake report. What it reads: site_manifest().


rule site:
    """The offline results site (results/site/index.html) and its zip for the report."""
    input:
        site_inputs(),
    output:
        index="results/site/index.html",
        archive=report(
            "results/site.zip",
            caption="../report/site.rst",
            category="Results site",
        ),
    log:
        "logs/site.log",
    benchmark:
        # not in results/benchmarks/rules.tsv: the site shows that table, so it is made after it
        "results/benchmarks/site.tsv"
    conda:
        LIGHT_ENV
    params:
        # the pages' sources by page, and each comparison family's settings (shown on its page)
        manifest=site_manifest(),
    script:
        "../../scripts/site.py"
