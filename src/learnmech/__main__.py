"""``python -m learnmech`` runs the command line."""

from learnmech.cli import main

main()
