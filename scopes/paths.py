"""A small path syntax into arguments and results, shared by tool metadata and grant constraints.

    path    := segment ("." segment)*
    segment := name | name "[]"          name := [A-Za-z_][A-Za-z0-9_]*

`contacts[].email` is the `email` of every element of the `contacts` list; `to` is the `to` argument (a list
value at the end of a path stands for each of its elements). A path is *rooted*: it starts at the top of the
arguments or the result. Where a path locates data to mask (`redact`, `label_fields`), a bare name with no dot
and no `[]` matches that key at any depth instead: `phone` masks every field named `phone`.

There is no index, wildcard or filter: the paths name fields of typed models, and `@tool` checks at import
that each one exists.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Path", "PathError", "filter_items", "parse_path", "values_at"]

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,99})(\[\])?")
_MAX_SEGMENTS = 12


class PathError(ValueError):
    """A path does not follow the syntax."""


@dataclass(frozen=True, slots=True)
class Path:
    text: str
    # (name, each): `each` is True for `name[]`, the elements of the list under `name`.
    segments: tuple[tuple[str, bool], ...]

    @property
    def bare(self) -> bool:
        """A single name without `[]`: matches the key at any depth where paths locate data to mask."""
        return len(self.segments) == 1 and not self.segments[0][1]

    @property
    def has_each(self) -> bool:
        return any(each for _, each in self.segments)

    @property
    def head(self) -> str:
        return self.segments[0][0]


@lru_cache(maxsize=2048)
def parse_path(text: str) -> Path:
    """Parse `text`; raises PathError naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise PathError("a path must be a non-empty string")
    parts = text.split(".")
    if len(parts) > _MAX_SEGMENTS:
        raise PathError(f"path {text!r} is deeper than {_MAX_SEGMENTS} segments")
    segments = []
    for part in parts:
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise PathError(f"path {text!r}: segment {part!r} must be a name, optionally followed by []")
        segments.append((match.group(1), match.group(2) is not None))
    return Path(text, tuple(segments))


def _walk(node: Any, segments: Sequence[tuple[str, bool]]) -> Iterator[Any]:
    if not segments:
        yield node
        return
    if not isinstance(node, Mapping):
        return
    (name, each), rest = segments[0], segments[1:]
    value = node.get(name)
    if each:
        if isinstance(value, list | tuple):
            for item in value:
                yield from _walk(item, rest)
    else:
        yield from _walk(value, rest)


def values_at(data: Any, path: Path) -> list[Any]:
    """The values `path` names in `data` (rooted); a list at the end stands for its elements; absent → []."""
    found: list[Any] = []
    for value in _walk(data, path.segments):
        if isinstance(value, list | tuple):
            found.extend(value)
        else:
            found.append(value)
    return found


def filter_items(data: Any, path: Path, keep: Callable[[list[Any]], bool]) -> tuple[Any, int]:
    """Copy `data` keeping only the elements of the list at `path`'s last `[]` for which `keep(values)` holds,
    where `values` are the values of the rest of the path inside the element. Returns (copy, removed count).
    Only the containers along the path are copied; `data` itself is never changed."""
    last = max((i for i, (_, each) in enumerate(path.segments) if each), default=-1)
    if last < 0:
        raise PathError(f"path {path.text!r} names no list to filter (it has no [])")
    rest = Path(path.text, path.segments[last + 1 :])

    def copy(node: Any, depth: int) -> tuple[Any, int]:
        if not isinstance(node, Mapping):
            return node, 0
        name, each = path.segments[depth]
        if name not in node:
            return node, 0
        value = node[name]
        removed = 0
        if depth == last:
            if not isinstance(value, list | tuple):
                return node, 0
            kept = []
            for item in value:
                if keep(values_at(item, rest) if rest.segments else [item]):
                    kept.append(item)
                else:
                    removed += 1
            new_value: Any = kept
        elif each:
            if not isinstance(value, list | tuple):
                return node, 0
            new_items = []
            for item in value:
                new_item, n = copy(item, depth + 1)
                new_items.append(new_item)
                removed += n
            new_value = new_items
        else:
            new_value, removed = copy(value, depth + 1)
        if removed == 0:
            return node, 0
        return {**node, name: new_value}, removed

    return copy(data, 0)
