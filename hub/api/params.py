"""Path parameters shared by the admin API and the admin page."""

from typing import Annotated

from fastapi import Path

__all__ = ["RowId"]

# A database row id (an agent's key, a grant, a flow rule): the columns are 32-bit on PostgreSQL, so a larger
# number can name nothing, and must be refused as a bad request rather than reach the database and fail there.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The row's id, as listed.")]
