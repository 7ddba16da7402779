"""Rule plot_umap_grid: every method's UMAP of one dataset, coloured by cell type and batch."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    import anndata as ad

    from livaebench.labels import label_column
    from livaebench.plotting import umap_grid

    row = snakemake.params.row
    from livaebench.methods.controls import CONTROLS

    # controls are marked with their role in the panel titles (docs/methods.md §8)
    embeddings = {(f"{m}\n({CONTROLS[m]} control)" if m in CONTROLS else m): ad.read_h5ad(p)
                  for m, p in zip(snakemake.params.methods, snakemake.input)}
    # a pseudo-label row (label_key pseudo:kmeans[:K]) colours by its obs column, named in the title
    color_keys = [key for key in (label_column(row["label_key"]), row["batch_key"]) if key]
    notes = {a.uns.get("livaebench", {}).get("label_note", "") for a in embeddings.values()} - {""}
    umap_grid(embeddings, color_keys=color_keys, out_png=snakemake.output.png,
              title=f"{row['dataset']}: UMAP of each method's latent" + "".join(f"; colours: {n}" for n in notes))
