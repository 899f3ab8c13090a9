"""User-facing errors."""


class UserError(Exception):
    """An error the user can fix; the CLI prints its message, no traceback, exit status 2."""
