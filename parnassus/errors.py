"""User-facing errors: each carries a one-line message that names the file, event or card field."""


class ParnassusError(Exception):
    """An error caused by the user's input; the CLI prints its message on one line and exits non-zero."""


class CardError(ParnassusError):
    """A card (YAML) is malformed: unknown key, wrong type, missing file."""


class InputError(ParnassusError):
    """An input event file cannot be read."""


class OutputError(ParnassusError):
    """An output file cannot be written: full disk, missing folder, a directory or the input file as OUTPUT."""


def one_line(error: Exception) -> str:
    """An exception's message on one line (libraries such as uproot write several), for a one-line error."""
    return " ".join(str(error).split()) or type(error).__name__
