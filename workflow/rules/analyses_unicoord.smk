# Analyses of unicoord models (placeholder: filled by its issue).
