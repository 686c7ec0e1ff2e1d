"""OpenLineage for the render operators, the download operator and the sensor.

Imported only inside the operators' ``get_openlineage_facets_on_complete`` / ``_on_failure`` methods, which only
Airflow's OpenLineage listener calls (so only where ``apache-airflow-providers-openlineage`` is installed and
enabled); importing :mod:`airflow_provider_luma.operators` never imports this module.

Naming follows the OpenLineage spec (namespace = ``scheme://authority``, name = path):

* a **generation** is ``Dataset("luma-gmi://<api host>", "generations/<generation id>")`` (``luma-agents://`` on
  the native Luma Agents API): the render that made it outputs it, and every later render made from it (extend,
  interpolate, reframe, edit, a keyframe) inputs the very same dataset, so a lineage backend links each clip to
  the clip it came from;
* a **stored file** (``output_path``) is named as Airflow's own asset conversions name it: ``file`` +
  ``/abs/path`` for local files, ``s3://bucket`` + key (any other ``ObjectStoragePath`` scheme alike);
* a **frame URL** is ``https://host`` + path; its query string and fragment are dropped, since a presigned
  image URL carries its credential there;
* a **source video** (``source_video``) is a file dataset like a stored file.

The run facets are ``externalQuery`` (the request id, as first-party providers record a job id) and
``lumaRender`` (request and generation ids, model, backend, mode, sources, estimated cost); on failure
``errorMessage`` carries the error.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import (
    Dataset,
    ErrorMessageRunFacet,
    ExternalQueryRunFacet,
    RunFacet,
)
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_luma.runtime.outcome import last_error, last_result

BACKEND_SCHEMES = {"gmi": "luma-gmi", "luma_agents": "luma-agents"}
"""URI scheme of each backend's generation namespace."""

FACET_SCHEMA_URL = (
    "https://github.com/airflow-provider-luma/airflow-provider-luma/blob/main/docs/lineage.md#lumarenderrunfacet"
)


@attr.define
class LumaRenderRunFacet(RunFacet):
    """The Luma render a task run bought, re-attached to, waited for or stored."""

    request_id: str | None = None
    generation_id: str | None = None
    model: str | None = None
    backend: str | None = None
    mode: str | None = None
    source_generation_ids: list[str] = attr.field(factory=list)
    estimated_cost_usd: float | None = None

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_URL


def backend_namespace(luma_conn_id: str, backend: str | None) -> str:
    """``luma-gmi://<host>`` or ``luma-agents://<host>``: the service the connection's key talks to.

    The host comes from the connection (so a simulator's generations never merge with production's); when the
    connection cannot be read, the backend's public default host stands in.
    """
    from airflow_provider_luma.core.http import normalize_base_url

    base_url: str | None = None
    try:
        from airflow_provider_luma.hooks import LumaHook

        settings = LumaHook(luma_conn_id).get_settings()
        backend = backend or settings.backend
        base_url = settings.base_url
    except Exception:  # noqa: BLE001 - lineage must never fail a task; the public host is the best guess
        base_url = None
    backend = backend if backend in BACKEND_SCHEMES else "gmi"
    url = urlsplit(base_url or normalize_base_url(None, backend=backend))
    return f"{BACKEND_SCHEMES[backend]}://{url.netloc}"


def generation_dataset(namespace: str, generation_id: str) -> Dataset:
    """The dataset of one generation in a backend namespace."""
    return Dataset(namespace=namespace, name=f"generations/{generation_id}")


def location_dataset(location: Any) -> Dataset | None:
    """A stored file or source video (local path, ``file://`` or any ``ObjectStoragePath`` URI) as a dataset."""
    text = str(location or "").strip()
    if not text:
        return None
    if "://" not in text:
        return Dataset(namespace="file", name=text) if text.startswith("/") else None
    parts = urlsplit(text)
    host = parts.hostname or ""  # drops ObjectStoragePath's ``conn_id@`` and any port credentials
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.scheme in ("file", "local"):
        return Dataset(namespace=f"file://{host}" if host else "file", name=parts.path or "/")
    return Dataset(namespace=f"{parts.scheme}://{host}", name=parts.path.lstrip("/") or "/")


def url_dataset(url: Any) -> Dataset | None:
    """A frame image URL as a dataset, without its query string (a presigned URL's credential)."""
    text = str(url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if not parts.port else f"{parts.hostname}:{parts.port}"
    return Dataset(namespace=f"{parts.scheme}://{host}", name=parts.path or "/")


def _unique(datasets: Iterable[Dataset | None]) -> list[Dataset]:
    seen: set[tuple[str, str]] = set()
    out: list[Dataset] = []
    for ds in datasets:
        if ds is not None and (ds.namespace, ds.name) not in seen:
            seen.add((ds.namespace, ds.name))
            out.append(ds)
    return out


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def _params(operator: Any) -> dict[str, Any]:
    """The rendered payload parameters; ``{}`` when they no longer validate (the failure says why)."""
    try:
        params = operator.spec_params()
    except Exception:  # noqa: BLE001 - e.g. an extend without generation id: the error facet tells the story
        return {}
    return dict(params) if isinstance(params, Mapping) else {}


def _source_ids_and_urls(params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Generation ids and image URLs a render is made from, read from its payload parameters."""
    ids: list[str] = []
    urls: list[str] = []
    for key in ("start_frame_generation_id", "end_frame_generation_id", "source_generation_id"):
        value = params.get(key)
        if isinstance(value, str) and value.strip() and "{{" not in value:
            ids.append(value.strip())
    for key in ("start_frame_url", "end_frame_url"):
        if _is_url(params.get(key)):
            urls.append(str(params[key]).strip())
    keyframes = params.get("keyframes")
    if isinstance(keyframes, list | tuple):
        for item in keyframes:
            if _is_url(item):
                urls.append(str(item).strip())
            elif isinstance(item, str) and item.strip():
                ids.append(item.strip())
    return ids, urls


def _run_facets(namespace: str, result: Mapping[str, Any], operator: Any, failed: bool) -> dict[str, RunFacet]:
    facets: dict[str, RunFacet] = {}
    request_id = result.get("request_id") or getattr(operator, "request_id", None)
    if isinstance(request_id, str) and request_id and "{{" not in request_id:
        facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=request_id, source=namespace)
    if result or request_id:
        facets["lumaRender"] = LumaRenderRunFacet(
            request_id=request_id if isinstance(request_id, str) else None,
            generation_id=result.get("generation_id"),
            model=result.get("model") or getattr(operator, "MODEL_ID", None) or getattr(operator, "model", None),
            backend=result.get("backend"),
            mode=result.get("mode"),
            source_generation_ids=list(result.get("source_generation_ids") or []),
            estimated_cost_usd=result.get("estimated_cost_usd"),
        )
    error = last_error(operator)
    if failed and error is not None:
        facets["errorMessage"] = ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}",
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)),
        )
    return facets


def _stored_files(result: Mapping[str, Any]) -> list[Dataset | None]:
    return [location_dataset(result.get("video_path")), location_dataset(result.get("exr_path"))]


def render_lineage(operator: Any, *, failed: bool = False) -> OperatorLineage[Any, Any]:
    """Lineage of a render task (generate, extend, interpolate, edit, reframe)."""
    result: Mapping[str, Any] = last_result(operator) or {}
    namespace = backend_namespace(operator.luma_conn_id, result.get("backend"))
    params = _params(operator)
    ids, urls = _source_ids_and_urls(params)
    ids += [str(i) for i in result.get("source_generation_ids") or []]
    generation_id = result.get("generation_id")
    return OperatorLineage(
        inputs=_unique(
            [
                *(generation_dataset(namespace, i) for i in ids),
                *(url_dataset(u) for u in urls),
                location_dataset(params.get("source_video")),
            ]
        ),
        outputs=_unique(
            [generation_dataset(namespace, generation_id) if generation_id else None, *_stored_files(result)]
        ),
        run_facets=_run_facets(namespace, result, operator, failed),
    )


def download_lineage(operator: Any, *, failed: bool = False) -> OperatorLineage[Any, Any]:
    """Lineage of ``LumaDownloadVideoOperator``: the generation in, its stored files out."""
    result: Mapping[str, Any] = last_result(operator) or {}
    namespace = backend_namespace(operator.luma_conn_id, result.get("backend"))
    generation_id = result.get("generation_id") or operator.generation_id
    return OperatorLineage(
        inputs=_unique([generation_dataset(namespace, generation_id) if generation_id else None]),
        outputs=_unique(_stored_files(result)),
        run_facets=_run_facets(namespace, result, operator, failed),
    )


def sensor_lineage(operator: Any, *, failed: bool = False) -> OperatorLineage[Any, Any]:
    """Lineage of ``LumaGenerationSensor``: the generation it waited for is its output.

    A render submitted with ``wait_for_completion=False`` returns before its generation id exists, so the sensor's
    run is where the generation first appears; renders made from it then link to this run.
    """
    result: Mapping[str, Any] = last_result(operator) or {}
    namespace = backend_namespace(operator.luma_conn_id, result.get("backend"))
    generation_id = result.get("generation_id") or operator.generation_id
    return OperatorLineage(
        outputs=_unique([generation_dataset(namespace, generation_id) if generation_id else None]),
        run_facets=_run_facets(namespace, result, operator, failed),
    )
