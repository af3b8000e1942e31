"""``fer-degrade``: the degradation command line."""

from __future__ import annotations

import rich_click as click

from fercore import __version__
from fercore.cli import FerGroup


@click.group(cls=FerGroup)
@click.version_option(__version__, prog_name="fer-degrade")
def main() -> None:
    """Rebuild degraded FER datasets: under-display-camera (UDC) and low-light copies.

    Outputs mirror the source layout, carry a manifest with the sha256 of every image, resume
    after an interruption and reproduce the same bytes for the same seed.
    """


if __name__ == "__main__":
    main()
