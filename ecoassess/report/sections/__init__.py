"""The report's sections, one module per part of the assessment (see :mod:`ecoassess.report.content`)."""
