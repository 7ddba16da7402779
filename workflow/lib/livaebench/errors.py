"""One exception type for bad user input, so every entry point prints one line and exits non-zero."""


class InputError(Exception):
    """Bad input (data file, registry row, config). The message is one line naming the file/dataset and the fix."""

    def __init__(self, what: str, problem: str, fix: str):
        self.what, self.problem, self.fix = what, problem, fix
        super().__init__(f"{what}: {problem}. Fix: {fix}")


# up to this many choices an error lists them all; beyond it only the closest (a long list hides the one meant)
LISTED_CHOICES = 10


def choose_from(name, choices, listed_in: str) -> str:
    """The fix of an error about ``name``, which is not among ``choices``: all of them when they are few, else
    the closest spellings (``difflib``, ignoring case) and where the whole list is (``listed_in``, e.g.
    'docs/baselines.md')."""
    import difflib

    choices = [str(c) for c in choices]
    if len(choices) <= LISTED_CHOICES:
        return f"use one of: {', '.join(choices)}"
    by_lower = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    close = [by_lower[c] for c in difflib.get_close_matches(str(name).lower(), list(by_lower), n=3, cutoff=0.6)]
    if not close:
        return f"use a name from {listed_in} ({len(choices)} in all)"
    quoted = [f"'{c}'" for c in close]
    guess = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"did you mean {guess}? ({listed_in} lists all {len(choices)})"
