"""The one exception type the CIFAKE kit raises for bad input or state."""


class CifakeError(Exception):
    """Bad input or state, with a message that says what is wrong and what to do.

    The `cifake` command prints the message and exits with status 1; set
    ``CIFAKE_DEBUG=1`` to see the traceback instead.
    """
