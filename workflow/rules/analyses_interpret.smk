# Analyses of interpret models (placeholder: filled by its issue).
