"""Land cover (issue 21): classification from imagery, accuracy and error-adjusted areas (Olofsson et al. 2014),
post-processing, and land-cover accounting across years."""
