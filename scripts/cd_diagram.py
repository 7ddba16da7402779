"""Rule cd_diagram: Friedman + Nemenyi critical-difference diagram of one modality's ranks (PNG + PDF)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import pandas as pd

    from livaebench.summary import cd_analysis
    from livaebench.summary_plots import cd_diagram

    scores = pd.read_csv(snakemake.input[0], sep="\t", dtype={"method": str, "metric": str, "category": str})
    result = cd_analysis(scores, alpha=snakemake.params.alpha)
    cd_diagram(result, out_png=snakemake.output.png, title=snakemake.wildcards.modality)
    log.info(f"{snakemake.wildcards.modality}: k={result['k']} N={result['n']} CD={result['cd']:.3g} "
             f"Friedman p={result['friedman_p']:.3g} {result['note']}")
