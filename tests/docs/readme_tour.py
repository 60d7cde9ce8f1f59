"""README's five-minute tour, read from README.md: its shell blocks and what each prints.

A block of the tour is a fenced ``sh`` block right after an HTML comment ``<!-- tour -->``
(``<!-- tour retry -->``: it may need a few tries, as it waits for a scheduled job). What
it prints, where README shows it, is the fenced block after ``<!-- tour prints -->`` that
follows it: each line must appear in the output, in order, with ``...`` standing for any
text within a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"<!-- tour( retry| prints)? -->\n```[a-z]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Step:
    script: str
    prints: tuple[str, ...] = ()
    retry: bool = False

    def missing_from(self, output: str) -> str | None:
        """The first expected line not found in ``output`` (after the lines before it)."""
        position = 0
        for line in self.prints:
            pattern = ".*?".join(re.escape(part) for part in line.split("..."))
            found = re.compile(pattern).search(output, position)
            if found is None:
                return line
            position = found.end()
        return None


def tour(readme: Path) -> list[Step]:
    steps: list[Step] = []
    for match in MARKER.finditer(readme.read_text()):
        kind, body = match.group(1), match.group(2)
        if kind == " prints":
            if not steps or steps[-1].prints:
                raise ValueError(f"'tour prints' without a tour block before it: {body[:60]!r}")
            expected = tuple(line.strip() for line in body.splitlines() if line.strip())
            steps[-1] = Step(steps[-1].script, expected, steps[-1].retry)
        else:
            steps.append(Step(body, retry=kind == " retry"))
    return steps
