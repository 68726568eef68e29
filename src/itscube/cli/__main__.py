"""``python -m itscube.cli``: the command line."""

from itscube.cli import main

__all__: list[str] = []

main()
