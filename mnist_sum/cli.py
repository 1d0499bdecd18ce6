"""What the command-line tools share: help that shows every default, and errors as one line, no traceback."""

import argparse
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the module docstring's layout and shows every option's default."""


def exit_with(error: Exception) -> None:
    """End the program with `error: <message>` on stderr and exit status 1 (for errors the user can fix)."""
    sys.exit(f"error: {error}")
