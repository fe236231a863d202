"""Per-pixel ecological layers computed on the analysis grid (vegetation, land-cover reclassification, ...)."""
