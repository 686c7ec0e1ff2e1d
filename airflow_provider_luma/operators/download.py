"""``LumaDownloadVideoOperator``: store the files of a render made earlier (another run, another DAG)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_luma.operators._base import DEFAULT_ASSET_ALIAS, DELIVERY_FIELD, LumaVideoLink, add_alias
from airflow_provider_luma.runtime.outcome import records_outcome

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_luma.runtime.download import DownloadPlan


class LumaDownloadVideoOperator(BaseOperator):
    """Store the MP4 (and EXR) of a render that finished earlier, e.g. in another DAG run or task.

    Fresh presigned URLs are fetched from the request first, so it works long after the render's own URLs
    expired (for as long as the service keeps the generation).

    :param request_id: the request id, typically ``render.output["request_id"]`` (on the Luma Agents API it is the
        generation id). GMI's queue documents no lookup by generation id, so a request id is required.
    :param output_path: folder or file name pattern, as for :class:`LumaGenerateVideoOperator` (required).
    :param generation_id: optional check: fail if the request holds a different generation.
    :param luma_conn_id: Airflow connection (type ``luma``).
    :param asset_alias: Asset events for the stored files go through ``AssetAlias(asset_alias)`` (default
        ``"luma_videos"``; ``None`` emits none).

    Returns (and pushes as XCom keys) ``generation_id``, ``request_id``, ``video_path``, ``exr_path``,
    ``video_url``, ``exr_url``.
    """

    template_fields: Sequence[str] = ("request_id", "generation_id", "output_path", "luma_conn_id", DELIVERY_FIELD)
    template_fields_renderers: ClassVar[dict[str, str]] = {DELIVERY_FIELD: "json"}
    ui_color = "#e8dcff"
    operator_extra_links = (LumaVideoLink(),)
    # Re-send the rendered fields after execution: luma_delivery (what the gallery serves) is set while executing.
    overwrite_rtif_after_execution = True

    def __init__(
        self,
        *,
        request_id: str,
        output_path: Any,
        generation_id: str | None = None,
        luma_conn_id: str = "luma_default",
        asset_alias: str | None = DEFAULT_ASSET_ALIAS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        add_alias(kwargs, output_path, asset_alias)
        super().__init__(**kwargs)
        self.request_id = request_id
        self.output_path = output_path
        self.generation_id = generation_id
        self.luma_conn_id = luma_conn_id
        self.asset_alias = asset_alias
        self.luma_video_link: str | None = None
        self.luma_delivery: dict[str, str | None] | None = None  # set by the worker; never a parameter

    def download_plan(self) -> DownloadPlan:
        """What this task does (rendered values), validated.

        :raises LumaValidationError: naming ``request_id`` or ``output_path``.
        """
        from airflow_provider_luma.runtime.download import DownloadPlan

        return DownloadPlan.checked(
            task_id=self.task_id,
            conn_id=self.luma_conn_id,
            request_id=self.request_id,
            output_path=self.output_path,
            generation_id=self.generation_id,
            asset_alias=self.asset_alias,
        )

    @records_outcome
    def execute(self, context: Context) -> dict[str, Any]:
        """Look the request up, download its files to ``output_path`` and emit Asset events."""
        from airflow_provider_luma.runtime.download import download_existing
        from airflow_provider_luma.runtime.plan import validated

        return download_existing(self, context, validated(self.download_plan))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the generation in, each stored file out, the request id as a run facet."""
        from airflow_provider_luma.runtime.lineage import download_lineage

        return download_lineage(self)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage of a failed try: the generation (when known) and the error."""
        from airflow_provider_luma.runtime.lineage import download_lineage

        return download_lineage(self, failed=True)
