"""The one exception type the CIFAKE kit raises for bad input or state."""


class CifakeError(Exception):
    """Bad input or state, with a message that says what is wrong and what to do: the `cifake` command prints
    it and exits with status 1 (``CIFAKE_DEBUG=1``: the traceback instead)."""
