"""The import routes (a charity's key; another charity's imports and profiles are 404).

POST /v1/imports (multipart: `file`, and `profile` (a saved profile's name) or `mapping`
(its JSON), `dry_run` default true) previews; POST /v1/imports/{id}/commit sends (202,
a background job: GET /v1/imports/{id} shows its progress); GET .../report.csv;
GET .../statement-check; DELETE /v1/imports/{id}; /v1/import-profiles/{name}."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ledger_api.core import ids
from ledger_api.core.access_log import TraceDep
from ledger_api.core.errors import (
    AUTH_ERRORS,
    BODY_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    InvalidRequest,
    Problem,
    problems,
)
from ledger_api.core.schemas import CampaignId
from ledger_api.core.security import WriterPrincipal
from ledger_api.imports import profiles, reading, service
from ledger_api.imports.schemas import (
    ImportPreview,
    Imports,
    Mapping,
    Profile,
    ProfileName,
    Profiles,
    StatementCheck,
)
from ledger_api.transactions.service import WriterDep

router = APIRouter(tags=["imports"])
ImportPath = Annotated[str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
ProfilePath = Annotated[ProfileName, Path()]
# The file, a mapping of at most a few kB and the form's framing.
UPLOAD_BODY = reading.MAX_FILE + 256 * 1024
IMPORT_ERRORS = problems(*WRITE_ERRORS)

UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV, TSV or XLSX, at most 10 MiB.",
                        },
                        "profile": {"type": "string", "description": "A saved profile's name."},
                        "mapping": {
                            "type": "string",
                            "description": "The mapping as JSON (instead of a profile).",
                        },
                        "dry_run": {"type": "boolean", "default": True},
                    },
                }
            }
        },
    }
}


@router.post(
    "/v1/imports",
    status_code=201,
    max_body_size=UPLOAD_BODY,
    openapi_extra=UPLOAD_FORM,
    response_model=ImportPreview,
    responses={202: {"model": ImportPreview, "description": "dry_run=false: committing"}, **IMPORT_ERRORS},
)
async def upload(
    request: Request, writes: WriterDep, principal: WriterPrincipal, background: BackgroundTasks
) -> JSONResponse:
    """Preview a statement: every row's verdict, nothing sent (dry_run, the default). With
    dry_run=false the import is committed at once (202; follow GET /v1/imports/{id})."""
    charity_hex = service.charity_of(principal)
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException as exc:
        raise InvalidRequest(
            f"send multipart/form-data with a `file` ({exc.detail})", code="bad-form"
        ) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("send the statement as the multipart file part `file`", code="file-missing")
        data = await upload.read(reading.MAX_FILE + 1)
        filename = upload.filename or "statement"
        mapping = await run_in_threadpool(
            _mapping, writes, charity_hex, form.get("profile"), form.get("mapping")
        )
        dry_run = str(form.get("dry_run", "true")).lower() not in ("false", "0", "no")
    finally:
        await form.close()
    preview = await run_in_threadpool(service.preview, writes, principal, filename, data, mapping)
    if dry_run:
        return JSONResponse(preview.body(), status_code=201)
    await run_in_threadpool(service.start_commit, writes, principal, preview.id)
    background.add_task(service.run_commit, writes, principal, preview.id)
    shown = await run_in_threadpool(service.show, writes, principal, preview.id)
    return JSONResponse(shown.body(), status_code=202, background=background)


def _mapping(writes: WriterDep, charity_hex: str, profile: object, mapping: object) -> Mapping:
    if isinstance(profile, str) and profile and mapping is None:
        if len(profile) > 64:
            raise InvalidRequest("a profile name is at most 64 characters", code="profile-name-invalid")
        return profiles.mapping_of(writes.engine, writes.deployment_id, charity_hex, profile)
    if isinstance(mapping, str) and profile is None:
        if len(mapping) > 16 * 1024:
            raise InvalidRequest("the mapping is over 16 KiB", code="mapping-invalid")
        try:
            return Mapping.model_validate_json(mapping)
        except ValidationError as exc:
            raise InvalidRequest(
                "the mapping does not fit",
                code="mapping-invalid",
                errors=[
                    {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ],
            ) from None
    raise InvalidRequest(
        "give either `profile` (a saved profile's name) or `mapping` (JSON)", code="mapping-missing"
    )


@router.get("/v1/imports", responses=problems(InvalidRequest, *AUTH_ERRORS))
def list_imports(
    writes: WriterDep, principal: WriterPrincipal, limit: Annotated[int, Query(ge=1, le=100)] = 100
) -> Imports:
    """The charity's imports still kept (30 days, or until deleted), newest first."""
    return Imports(imports=service.list_imports(writes, principal, limit))


@router.get("/v1/imports/{import_id}", responses=problems(*READ_ERRORS, *AUTH_ERRORS))
def show(
    import_id: ImportPath,
    writes: WriterDep,
    principal: WriterPrincipal,
    background: BackgroundTasks,
    offset: Annotated[int, Query(ge=0, le=reading.MAX_ROWS)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = service.PREVIEW_ITEMS,
) -> ImportPreview:
    """The import's verdicts and its commit's progress (state, rows sent, transactions).
    A commit whose process died (its heartbeat stopped) is taken over and resumed here."""
    if service.take_over(writes, principal, import_id):
        background.add_task(service.run_commit, writes, principal, import_id)
    return service.show(writes, principal, import_id, offset, limit)


@router.post(
    "/v1/imports/{import_id}/commit", status_code=202, response_model=ImportPreview, responses=IMPORT_ERRORS
)
def commit(
    import_id: ImportPath, writes: WriterDep, principal: WriterPrincipal, background: BackgroundTasks
) -> ImportPreview:
    """Commit a previewed import: duplicates re-checked, every row simulated again, then
    sent 500 donations a transaction. Answers at once (202); GET the import for progress."""
    service.start_commit(writes, principal, import_id)
    background.add_task(service.run_commit, writes, principal, import_id)
    return service.show(writes, principal, import_id)


@router.get(
    "/v1/imports/{import_id}/report.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The report (CSV, UTF-8 with a BOM), as an attachment.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problems(*READ_ERRORS, *AUTH_ERRORS),
    },
)
def report(
    import_id: ImportPath, writes: WriterDep, principal: WriterPrincipal, trace: TraceDep
) -> StreamingResponse:
    """Which row became which donation, with its receipt secret (give it to the donor).
    The read is in the access log (it hands out donors' receipt secrets)."""
    charity = ids.from_bytes32(principal.charity_id) if principal.charity_id else None
    try:
        lines = service.report_csv(writes, principal, import_id)
    except Problem as refusal:
        trace.refused(charity, None, refusal.status)
        raise
    trace.served(charity, None, [import_id])
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}.csv"'},
    )


@router.get("/v1/imports/{import_id}/statement-check", responses=problems(*READ_ERRORS, *AUTH_ERRORS))
def statement_check(
    import_id: ImportPath,
    writes: WriterDep,
    principal: WriterPrincipal,
    campaign_id: CampaignId | None = None,
    period_from: Annotated[date | None, Query(alias="from")] = None,
    period_to: Annotated[date | None, Query(alias="to")] = None,
) -> StatementCheck:
    """The ledger's received total against the statement's credits and closing balance,
    and the unmatched rows on either side."""
    return service.statement_check(writes, principal, import_id, campaign_id, period_from, period_to)


@router.delete(
    "/v1/imports/{import_id}",
    status_code=204,
    response_class=Response,
    responses=problems(*READ_ERRORS, *AUTH_ERRORS),
)
def remove(import_id: ImportPath, writes: WriterDep, principal: WriterPrincipal) -> Response:
    """Delete the import and its sealed rows (the receipt secrets with them)."""
    service.remove(writes, principal, import_id)
    return Response(status_code=204)


@router.get("/v1/import-profiles", responses=problems(*AUTH_ERRORS))
def list_profiles(writes: WriterDep, principal: WriterPrincipal) -> Profiles:
    charity_hex = service.charity_of(principal)
    return Profiles(profiles=profiles.list_all(writes.engine, writes.deployment_id, charity_hex))


@router.get("/v1/import-profiles/{name}", responses=problems(*READ_ERRORS, *AUTH_ERRORS))
def get_profile(name: ProfilePath, writes: WriterDep, principal: WriterPrincipal) -> Profile:
    charity_hex = service.charity_of(principal)
    return profiles.get(writes.engine, writes.deployment_id, charity_hex, name)


@router.put("/v1/import-profiles/{name}", responses=problems(*BODY_ERRORS, *AUTH_ERRORS))
def put_profile(name: ProfilePath, body: Mapping, writes: WriterDep, principal: WriterPrincipal) -> Profile:
    """Save a column mapping under a name, for next month's statement."""
    charity_hex = service.charity_of(principal)
    return profiles.put(writes.engine, writes.deployment_id, charity_hex, name, body)


@router.delete(
    "/v1/import-profiles/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(*READ_ERRORS, *AUTH_ERRORS),
)
def delete_profile(name: ProfilePath, writes: WriterDep, principal: WriterPrincipal) -> Response:
    charity_hex = service.charity_of(principal)
    profiles.remove(writes.engine, writes.deployment_id, charity_hex, name)
    return Response(status_code=204)
