"""The one exception type the CIFAKE kit raises for bad input or state."""


class CifakeError(Exception):
    """Bad input or state, with a message that says what is wrong and what to do: the `cifake` command prints
    it and exits with status 1 (``CIFAKE_DEBUG=1``: the traceback instead)."""


def first_line(err: BaseException) -> str:
    """An exception in a few words for a message: `Type: first line of its message`, or `Type` alone."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
