"""Misuse of a command: input from the person at the keyboard that cannot be acted on (a missing
file, an unknown student, CUDA where there is none). Every verb raises `UsageError`; the command
line prints its message, which says what to do instead, and exits with status 2. A submission
that cannot be graded is never misuse: it gets 0 and a reason."""


class UsageError(Exception):
    """Bad command-line input: exit status 2 with this one-line message."""


USAGE_EXIT_STATUS = 2
