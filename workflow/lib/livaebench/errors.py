"""One exception type for bad user input, so every entry point prints one line and exits non-zero."""


class InputError(Exception):
    """Bad input (data file, registry row, config). The message is one line naming the file/dataset and the fix."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what, self.problem, self.fix = what, problem, fix
        super().__init__(f"{what}: {problem}. Fix: {fix}")
