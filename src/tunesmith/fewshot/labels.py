"""Zero-shot labels as the command line gives them: "World,Sports,Sci/Tech=science and technology"."""

from __future__ import annotations

from tunesmith.errors import UserError


def parse_labels(text: str) -> tuple[list[str], dict[str, str]]:
    """Label names in order, and the descriptions given as NAME=DESCRIPTION."""
    names: list[str] = []
    descriptions: dict[str, str] = {}
    for item in text.split(","):
        name, _, description = (part.strip() for part in item.partition("="))
        if not name:
            raise UserError(
                f"--labels {text!r}: an empty label name. Write the labels comma-separated, each NAME or "
                "NAME=DESCRIPTION, e.g. --labels World,Sports,Sci/Tech=science and technology."
            )
        if name in names:
            raise UserError(f"--labels {text!r}: {name!r} is given twice. Give each label once.")
        names.append(name)
        if description:
            descriptions[name] = description
    if len(names) < 2:
        raise UserError(f"--labels {text!r}: a classifier needs at least two labels, comma-separated.")
    return names, descriptions
