"""Monitoring-network overlay (issue 20): station registry, observations graded to the national standards
(STANDARDS §7), overlay on counties and zones, coverage audit and proposed points."""
