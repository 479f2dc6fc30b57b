"""What the REST API accepts, validated with pydantic; every problem names the field at fault."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from forge_sched.orders.status import FACTORY_ID
from forge_sched.orders.tables import ORDER_STATUSES

__all__ = ["IDEMPOTENCY_KEY", "BadRequest", "ListQuery", "OrderRequest", "check_idempotency_key", "problems",
           "validate"]

#: What an Idempotency-Key may be: 1-200 visible ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str):
        # pydantic turns ValueError (not TypeError) into a validation error naming the field
        raise ValueError("must be an ISO 8601 date-time string with a timezone, e.g. 2030-01-31T12:00:00Z")  # noqa: TRY004
    return value


def _in_utc_range(value: datetime) -> datetime:
    try:  # stored in UTC: 9999-12-31T23:59:59-12:00 has no UTC date-time
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC (years 1-9999)") from None
    return value


#: Printable text without leading or trailing spaces: a control character (NUL above all, which
#: PostgreSQL cannot store) is refused here rather than failing in the database.
PRODUCT_TYPE = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"


class OrderRequest(BaseModel):
    """The body of ``POST /orders``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_type: str = Field(min_length=1, max_length=100, pattern=PRODUCT_TYPE,
                              description="what to make (no leading or trailing spaces, no control characters)")
    quantity: int = Field(gt=0, le=1_000_000, strict=True, description="how many (an integer, 1..1000000)")
    deadline: Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc_range)] = Field(
        description="when it is due: ISO 8601 date-time with a timezone")


class ListQuery(BaseModel):
    """The query of ``GET /orders``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str | None = Field(None, description=f"one of {', '.join(ORDER_STATUSES)}")
    factory: str | None = Field(None, pattern=FACTORY_ID.pattern, description="orders held (or completed) by it")
    limit: int | None = Field(None, ge=1, description="most orders returned (default 100, or the page limit)")
    offset: int = Field(0, ge=0, description="orders skipped")


class BadRequest(Exception):
    """A request the API refuses: ``status`` (422, 400, 413, 415), the field at fault and all problems."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.errors = errors if errors is not None else ([{"field": field, "message": message}] if field else [])

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "field": self.field, "errors": self.errors}


def problems(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as ``{"field", "message"}`` (the field as a dotted path)."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out


def validate(model: type[BaseModel], data: Any, what: str) -> Any:
    """``model`` from ``data``, or a 422 :class:`BadRequest` naming the first field at fault."""
    if not isinstance(data, dict):
        raise BadRequest(422, f"invalid {what}: body must be a JSON object, got {type(data).__name__}", "body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = problems(exc)
        first = errors[0]
        raise BadRequest(422, f"invalid {what}: {first['field']}: {first['message']}", first["field"],
                         errors) from None


def check_idempotency_key(value: str | None) -> str | None:
    if value is not None and not IDEMPOTENCY_KEY.match(value):
        raise BadRequest(422, "Idempotency-Key must be 1-200 visible ASCII characters", "Idempotency-Key")
    return value

