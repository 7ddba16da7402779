"""livaebench: data, models, training, metrics, statistics and plots of the LiVAE benchmark.

The library knows nothing of Snakemake; the scripts under ``scripts/`` call it.
"""

__version__ = "0.1.0"
