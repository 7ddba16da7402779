"""Rule fairness: each method's settings and training in this run against its original's (results/stats/fairness.tsv)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.convergence import NOT_DECLARED, fairness_table, read_convergence
    from livaebench.methods import get_method
    from livaebench.results import write_tsv_atomic

    p = snakemake.params
    methods = {name: get_method(name) for name in p.overrides}
    table = fairness_table(methods, p.overrides, read_convergence(snakemake.input[0]),
                           global_params={"latent_dim": p.latent_dim})
    write_tsv_atomic(table, snakemake.output[0])
    undeclared = table.loc[table["origin"] == NOT_DECLARED, "method"].tolist()
    log.info(f"{len(table)} method(s); origin not declared: {', '.join(undeclared) or 'none'}")
