"""Errors a user can meet. Each names the problem and the fix, and renders as one line in the CLI."""


class KsdkError(Exception):
    """Base of every user-facing ksdk error: its str() is the one line the CLI prints."""


class PluginError(KsdkError):
    """A plugin could not be loaded, is not what its group expects, or does not exist."""


class TaskError(KsdkError):
    """A task file is missing, malformed, or lacks Model / get_inputs / get_init_inputs."""


class RunDirError(KsdkError):
    """A run directory is missing, partial, or not a ksdk run."""


class BudgetError(KsdkError):
    """A budget or limit was given in a form ksdk cannot use."""
