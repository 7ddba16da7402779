# Analyses of diffvae models (placeholder: filled by its issue).
