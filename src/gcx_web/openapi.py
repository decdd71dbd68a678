"""What the OpenAPI document says beyond what Litestar reads from the handlers' signatures.

Litestar builds the document from the handlers; three things it cannot see are added once the
app's Gcx is open, before any request is served:

- request bodies are closed: every input struct refuses unknown fields, so its schema says
  `additionalProperties: false`;
- the two multipart routes read their parts themselves: their request bodies are described
  here (part names, files as binary);
- the values a list filter accepts come from the running workflow and reference data (a
  plugin may add states), so the staff list's `status`, `region` and `commodity` parameters
  get their enums here.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import msgspec.inspect
from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema

from gcx_core.reference import COMMODITIES_BY_CODE, REGIONS_BY_CODE
from gcx_core.system import Gcx
from gcx_web.schemas import Input

STAFF_LIST = "/api/v1/staff/applications"
UPLOAD = "/api/v1/applications/{tracking_code}/documents/{requirement}"
WITH_DOCUMENTS = "/api/v1/applications/with-documents"


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _binary(description: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, format="binary", description=description)  # type: ignore[arg-type]


def _multipart(properties: dict[str, Schema], required: list[str], extra: bool) -> RequestBody:
    schema = Schema(
        type=OpenAPIType.OBJECT,
        properties=properties,  # type: ignore[arg-type]
        required=required,
        additional_properties=_binary("a document, named by its requirement code")
        if extra
        else False,
    )
    return RequestBody(
        content={"multipart/form-data": OpenAPIMediaType(schema=schema)}, required=True
    )


def complete_openapi(app: Litestar, gcx: Gcx) -> None:
    """Add what the handlers' signatures cannot say to the app's OpenAPI document."""
    document = app.openapi_schema
    components = (document.components.schemas if document.components else None) or {}
    for cls in _subclasses(Input):
        schema = components.get(cls.__name__)
        if isinstance(schema, Schema):
            schema.additional_properties = False
            _item_bounds(cls, schema)
    paths = document.paths or {}
    requirements = sorted(gcx.requirements)
    upload = paths.get(UPLOAD)
    if upload is not None and upload.post is not None:
        upload.post.request_body = _multipart(
            {"file": _binary("PDF, PNG or JPEG, by content")}, ["file"], extra=False
        )
    with_documents = paths.get(WITH_DOCUMENTS)
    if with_documents is not None and with_documents.post is not None:
        application = components.get("ApplicationIn")
        with_documents.post.request_body = _multipart(
            {
                "application": Schema(
                    type=OpenAPIType.STRING,
                    content_media_type="application/json",
                    description="The application as JSON (the body of POST /api/v1/applications)"
                    + ("" if application is None else ": see ApplicationIn"),
                ),
                **{code: _binary(f"the document for `{code}`") for code in requirements},
            },
            ["application"],
            extra=False,
        )
    staff_list = paths.get(STAFF_LIST)
    if staff_list is not None and staff_list.get is not None:
        # "" is "any", as the back office's filter form sends it.
        choices: dict[str, list[str]] = {
            "status": ["", *gcx.workflow.states],
            "region": ["", *REGIONS_BY_CODE],
            "commodity": ["", *COMMODITIES_BY_CODE],
        }
        for parameter in staff_list.get.parameters or []:
            values = choices.get(getattr(parameter, "name", ""))
            schema = getattr(parameter, "schema", None)
            if values is not None and isinstance(schema, Schema):
                _set_enum(schema, values)


def _item_bounds(cls: type, schema: Schema) -> None:
    """Litestar leaves the bounds of a list's items out of the schema (`list[Annotated[int,
    Meta(ge=1)]]` comes out as a list of any integers); put them in."""
    info = msgspec.inspect.type_info(cls)
    for field in getattr(info, "fields", ()):
        kind = field.type
        if not isinstance(kind, msgspec.inspect.ListType):
            continue
        item = kind.item_type
        prop = (schema.properties or {}).get(field.encode_name)
        target = getattr(prop, "items", None)
        if not isinstance(target, Schema):
            continue
        if isinstance(item, msgspec.inspect.IntType):
            if item.ge is not None:
                target.minimum = item.ge
            if item.le is not None:
                target.maximum = item.le
        elif isinstance(item, msgspec.inspect.StrType) and item.max_length is not None:
            target.max_length = item.max_length


def _set_enum(schema: Schema, values: list[str]) -> None:
    """Constrain a string (or the items of an array of strings, or each of `oneOf`) to values."""
    for option in schema.one_of or []:
        if isinstance(option, Schema):
            _set_enum(option, values)
    if isinstance(schema.items, Schema):
        _set_enum(schema.items, values)
    if schema.type == OpenAPIType.STRING:
        schema.enum = list(values)
