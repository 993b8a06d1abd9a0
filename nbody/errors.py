"""The one error type for bad user input.

Every stage raises `InputError` with a one-line, human-readable message when
its input is unusable (unknown law, missing file, mismatched dimensions, ...).
`run.py` catches it, prints the message and exits with status 2, so users
never see a traceback for a mistake they can fix.
"""


class InputError(ValueError):
    """Bad input from the user: the message is shown as a single line."""
