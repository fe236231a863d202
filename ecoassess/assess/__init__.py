"""Assessments built on the layers: RSEI (rsei), HJ 192-2015 EI (hj192), function-zone counties, change."""
