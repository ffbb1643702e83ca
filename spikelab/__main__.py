"""``python -m spikelab`` runs the ``spikelab`` command (also under ``torchrun``)."""
from spikelab.cli import main

raise SystemExit(main())
