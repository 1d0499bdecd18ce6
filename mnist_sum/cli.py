"""What the command-line tools share: help that shows every default, and errors as one line, no traceback."""

import argparse
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help keeps the module docstring's layout and shows each option's default (unless its help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        # A flag (store_true, --help: no value) says nothing by its default. Checked by kind, not by value:
        # 0 == False, and --seed's 0 is a default worth showing.
        # A required argument (a positional, --out of some commands) has no default to show: "(default: none)"
        # would read as if it could be left out.
        if (action.nargs == 0 or action.required or action.default == argparse.SUPPRESS
                or "default" in help_text):
            return help_text
        if action.default is None or action.default == "":  # not given: "(default: )" would read as a typo
            return help_text + " (default: none)"
        return help_text + " (default: %(default)s)"


def exit_with(error: Exception) -> None:
    """End the program with `error: <message>` on stderr and exit status 1 (for errors the user can fix)."""
    sys.exit(f"error: {error}")
