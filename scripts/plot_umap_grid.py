"""Rule plot_umap_grid: every method's UMAP of one dataset, coloured by cell type and batch."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    import anndata as ad

    from livaebench.plotting import umap_grid

    row = snakemake.params.row
    embeddings = {m: ad.read_h5ad(p) for m, p in zip(snakemake.params.methods, snakemake.input)}
    color_keys = [key for key in (row["label_key"], row["batch_key"]) if key]
    umap_grid(embeddings, color_keys=color_keys, out_png=snakemake.output.png,
              title=f"{row['dataset']}: UMAP of each method's latent")
