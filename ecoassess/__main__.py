"""``python -m ecoassess ...`` is the ``ecoassess`` command."""

from ecoassess.cli import main

main()
