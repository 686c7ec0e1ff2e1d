"""What happens after a render succeeded: store its files, emit Asset events, and say what the "Luma video" link
opens.

Worker-side and imported lazily (never at DAG-parse time). Used by a render's finish
(:mod:`airflow_provider_luma.runtime.finish`) and by the download operator's run
(:mod:`airflow_provider_luma.runtime.download`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_luma.core.errors import LumaDownloadError, LumaError
from airflow_provider_luma.core.jobs import JobStatus
from airflow_provider_luma.core.media import DownloadStats, download, human_bytes, media_client
from airflow_provider_luma.runtime.storage import OutputSpec, StorageSink, asset_uri, browsable_url
from airflow_provider_luma.runtime.task import context_get

if TYPE_CHECKING:
    from airflow_provider_luma.core.media import LogLike
    from airflow_provider_luma.hooks import LumaHook


def mask_urls(*urls: str | None) -> None:
    """Register presigned URLs with Airflow's secrets masker: they are capabilities, kept out of task logs."""
    from airflow_provider_luma.version_compat import mask_secret

    for url in urls:
        if url:
            mask_secret(url)


def placeholder_values(context: Any, task_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Values for the ``{placeholders}`` of ``output_path``, from the task context and the render's result."""
    ti = context_get(context, "ti")
    return {
        "generation_id": result.get("generation_id") or result.get("request_id"),
        "request_id": result.get("request_id"),
        "dag_id": getattr(ti, "dag_id", None) or "dag",
        "task_id": task_id,
        "run_id": context_get(context, "run_id") or getattr(ti, "run_id", None) or "run",
        "map_index": getattr(ti, "map_index", -1),
        "mode": result.get("mode") or "video",
    }


def store_outputs(
    hook: LumaHook,
    result: dict[str, Any],
    spec: OutputSpec,
    values: dict[str, Any],
    log: LogLike,
) -> dict[str, Any]:
    """Download the video (and the EXR when there is one) to ``spec``; returns the updated result.

    ``result`` must hold ``request_id``, ``generation_id`` and the presigned ``video_url`` / ``exr_url``. An
    expired URL is replaced by polling the request again; the fresh URLs end up in the returned result.
    """
    request_id = str(result.get("request_id") or "")
    urls = {"mp4": result.get("video_url"), "exr": result.get("exr_url")}
    if not urls["mp4"]:
        raise LumaDownloadError(f"Luma request {request_id} reported success but no video URL; nothing to download")

    def fresh_urls() -> None:
        try:
            generation = hook.get_generation(request_id, result.get("model"))
        except LumaError as exc:
            raise LumaDownloadError(f"could not fetch fresh URLs for Luma request {request_id}: {exc}") from None
        if generation.status is not JobStatus.SUCCESS or not generation.video_url:
            raise LumaDownloadError(f"Luma request {request_id} no longer offers its video ({generation.status})")
        mask_urls(generation.video_url, generation.exr_url)
        if (generation.video_url, generation.exr_url) == (urls["mp4"], urls["exr"]):
            # Same URL again: minted within the same second, or the service hands out a stored one. Give a
            # transient refusal a moment; download() bounds how often this happens (max_url_refreshes).
            log.warning("Luma request %s returned the same media URL; trying it again in %.0f s", request_id, 2.0)
            time.sleep(2.0)
        urls["mp4"], urls["exr"] = generation.video_url, generation.exr_url or urls["exr"]

    def url_source(ext: str) -> Any:
        def source(fresh: bool) -> str:
            if fresh:
                fresh_urls()
            url = urls[ext]
            if not url:
                raise LumaDownloadError(f"Luma request {request_id} offers no {ext} URL")
            return str(url)

        return source

    stored: dict[str, Any] = {"video_path": None, "exr_path": None, "video_bytes": None, "exr_bytes": None}
    client = media_client()  # one opener for both files
    for ext, kind in (("mp4", "video"), ("exr", "exr")):
        if not urls[ext]:
            continue
        target = spec.resolve(ext, values)
        label = f"{'EXR' if ext == 'exr' else 'video'} of generation {values['generation_id']}"
        log.info("Downloading the %s to %s", label, target)
        stats: DownloadStats = download(client, url_source(ext), StorageSink(target), label=label, logger=log)
        log.info(
            "Stored %s: %s in %.1f s (%s/s)%s",
            target, human_bytes(stats.size), stats.seconds, human_bytes(stats.bytes_per_second),
            f", after {stats.url_refreshes} fresh URL(s)" if stats.url_refreshes else "",
        )  # fmt: skip
        stored[f"{kind}_path"], stored[f"{kind}_bytes"] = str(target), stats.size
    return {**result, **stored, "video_url": urls["mp4"], "exr_url": urls["exr"]}


def asset_metadata(result: dict[str, Any], prompt_sha256: str | None, kind: str) -> dict[str, Any]:
    """The ``extra`` of an Asset event for one stored file (JSON values only).

    :param prompt_sha256: the prompt's digest as the durable record keeps it (never the prompt itself).
    """
    return {
        "kind": kind,
        "model": result.get("model"),
        "generation_id": result.get("generation_id"),
        "request_id": result.get("request_id"),
        "mode": result.get("mode"),
        "prompt_sha256": prompt_sha256,
        "estimated_cost_usd": result.get("estimated_cost_usd"),
        "billed_blocks": result.get("billed_blocks"),
        "resolution": result.get("resolution"),
        "duration": result.get("duration"),
        "size_bytes": result.get(f"{kind}_bytes"),
        "path": result.get(f"{kind}_path"),
    }


def emit_assets(
    context: Any,
    alias: str | None,
    result: dict[str, Any],
    prompt_sha256: str | None,
    log: LogLike,
) -> list[str]:
    """Emit one Asset event per stored file through ``AssetAlias(alias)``; returns the asset URIs."""
    paths = [(kind, result.get(f"{kind}_path")) for kind in ("video", "exr")]
    stored = [(kind, path) for kind, path in paths if path]
    if not alias or not stored:
        return []
    events = context_get(context, "outlet_events")
    if events is None:
        log.info("No outlet_events in this context (not run by Airflow's task runner); no Asset events emitted")
        return []
    from airflow.sdk import Asset, AssetAlias

    uris = []
    for kind, path in stored:
        uri = asset_uri(path)
        events[AssetAlias(alias)].add(Asset(uri), extra=asset_metadata(result, prompt_sha256, kind))
        uris.append(uri)
    log.info("Asset event(s) through alias %r: %s", alias, ", ".join(uris))
    return uris


def video_link(result: dict[str, Any]) -> str | None:
    """What the "Luma video" link opens: the stored copy when a browser can open it, else the presigned URL."""
    path = result.get("video_path")
    stored = browsable_url(asset_uri(path)) if path else None
    if stored:
        return stored
    url = result.get("video_url")
    return str(url) if url else None
