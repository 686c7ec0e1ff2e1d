"""The shared render operator, the "Luma video" link and the asset-alias helper.

Importing this is what a DAG file does at parse time, so it imports only ``airflow.sdk`` (and the runtime's
``outcome`` decorator): the runtime's flow, the specs, the hook and the trigger are imported inside methods. The
operator builds the render's plan in one place (:meth:`LumaRenderOperator.run_options`,
:meth:`LumaRenderOperator.render_plan`) and hands it, with itself as the runtime's ``RenderTask``, to
:mod:`airflow_provider_luma.runtime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import AssetAlias, BaseOperator, BaseOperatorLink

from airflow_provider_luma.runtime.outcome import records_outcome

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_luma.core.pricing import PriceTable
    from airflow_provider_luma.core.specs.base import RenderSpec, SourceFacts
    from airflow_provider_luma.operators.review import LumaReview
    from airflow_provider_luma.runtime.plan import RenderPlan, RunOptions

DEFAULT_ASSET_ALIAS = "luma_videos"
"""Stored files are announced as Asset events through ``AssetAlias("luma_videos")`` unless ``asset_alias`` says
otherwise; schedule a DAG on that alias to run whenever a new clip is stored."""

COMMON_TEMPLATE_FIELDS: tuple[str, ...] = ("luma_conn_id", "output_path", "max_cost_usd", "max_run_cost_usd")

DELIVERY_FIELD = "luma_delivery"
"""The worker-written record of what a task bought and stored (:mod:`airflow_provider_luma.runtime.delivery_record`): a
template field that is never a parameter, so it reaches the rendered template fields, which no REST user can
write, and the gallery trusts it where it cannot trust XComs."""


class LumaVideoLink(BaseOperatorLink):
    """ "Luma video" button: the clip's place in the run's "Luma renders" gallery page (``/luma/runs/…#clip=…``).

    The page streams the stored copy or mints a fresh presigned URL when opened, so the link works while the task
    renders and long after a presigned URL expired. It is built from the task instance's key and ``[api]
    base_url`` alone; the worker stores it as XCom ``_link_LumaVideoLink`` (Airflow does so when the task defers
    and when it finishes), which is what the UI reads.
    """

    name = "Luma video"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The gallery URL of this task instance's clip."""
        from airflow_provider_luma.plugins import gallery_url

        try:
            from airflow.providers.common.compat.sdk import conf

            base_url = str(conf.get("api", "base_url", fallback="") or "")
        except Exception:  # noqa: BLE001 - no configuration (a bare unit test): a path relative to the UI
            base_url = ""
        return gallery_url(base_url, ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)


def add_alias(kwargs: dict[str, Any], output_path: Any, alias: str | None) -> None:
    """Add the asset alias that stored files are announced through to the task's outlets (declared at parse time,
    so the DAG graph shows it)."""
    if output_path is None or not alias:
        return
    outlets = kwargs.get("outlets")
    current = [] if outlets is None else list(outlets) if isinstance(outlets, list | tuple) else [outlets]
    if not any(isinstance(o, AssetAlias) and o.name == alias for o in current):
        kwargs["outlets"] = [*current, AssetAlias(alias)]


class LumaRenderOperator(BaseOperator):
    """Base of every operator that buys a render: connection, polling, deadline, durability, storage, budget.

    Subclasses set :attr:`MODEL_ID`, list their own parameters in :attr:`PARAMS` (all templated, with
    the common ones below) and map them onto the model's payload in :meth:`spec_params`. Literal (untemplated)
    values are validated when the DAG is parsed; templated ones after templating, before any request.

    :param luma_conn_id: Airflow connection (type ``luma``) holding the API key.
    :param poll_interval: seconds between status checks (default 10).
    :param timeout: render deadline in seconds (default 3600); the trigger sends a ``timeout`` event then. An
        ``execution_timeout``, if shorter, becomes the deadline (Airflow 3.3 does not enforce it while deferred).
    :param deferrable: wait in the triggerer without holding a worker slot; ``False`` polls in the worker, for
        deployments without a triggerer. Default: ``[operators] default_deferrable``, True when unset.
    :param wait_for_completion: ``False`` submits, records the request durably and returns at once with
        ``request_id`` (``generation_id`` and the URLs ``None``), for a later
        :class:`~airflow_provider_luma.sensors.LumaGenerationSensor` or ``LumaDownloadVideoOperator``; no
        ``output_path`` then (nothing to store yet). Default True.
    :param reuse_existing: when this task instance already rendered successfully (e.g. it was cleared after
        success), return that render instead of paying for a new one (default True). In-flight renders are always
        re-attached and failed ones always resubmitted, whatever this says.
    :param resubmit_unknown: when an earlier try sent a create request whose answer was lost, submit again
        anyway (risking a second charge) instead of failing (default False).
    :param output_path: where to store the finished MP4 (and EXR): an absolute local path or an
        ``ObjectStoragePath`` URI (``file:///…``, ``s3://conn_id@bucket/key``). Ending in ``.mp4`` or ``.{ext}``
        it is a file name pattern with ``{generation_id}``, ``{request_id}``, ``{dag_id}``, ``{task_id}``,
        ``{run_id}``, ``{map_index}``, ``{mode}``, ``{ext}``; otherwise a folder (files named
        ``{task_id}-{generation_id}.mp4``). Placeholders work in folder parts too (``/clips/{run_id}/``). A literal
        value's shape is checked when the DAG is parsed. Unset: nothing is downloaded (presigned URLs expire
        after ~1 h).
    :param asset_alias: stored files are emitted as Asset events through ``AssetAlias(asset_alias)`` (default
        ``"luma_videos"``; ``None`` emits none). Only used with ``output_path``.
    :param max_cost_usd: fail (without retries, before any request) when the estimated cost is above this many
        US dollars, or unknown (edit and reframe have no published price: supply one in the connection).
    :param max_run_cost_usd: fail (without retries, before any request) when this render would bring the
        estimated cost of all renders bought in this DAG run above this many US dollars (``default_args``
        makes it the DAG's budget). Never exceeded, and exact: capped tasks take turns to decide, so a render that
        would fit is never refused (see :mod:`airflow_provider_luma.runtime.money`).
    :param review: a :class:`~airflow_provider_luma.operators.review.LumaReview`: a person approves each take
        in Airflow's UI, asks for a re-render with edited parameters, or rejects it (Airflow 3.1+; on 3.0 the DAG
        fails to import, naming 3.1). The result is the approved take's. Not with ``wait_for_completion=False``.
    """

    MODEL_ID: ClassVar[str]
    PARAMS: ClassVar[tuple[str, ...]] = ()
    template_fields: Sequence[str] = (*COMMON_TEMPLATE_FIELDS, DELIVERY_FIELD)
    template_fields_renderers: ClassVar[dict[str, str]] = {"prompt": "md", DELIVERY_FIELD: "json"}
    ui_color = "#e8dcff"
    operator_extra_links = (LumaVideoLink(),)
    # Re-send the rendered fields after each execution (and deferral): luma_delivery is set while executing.
    overwrite_rtif_after_execution = True

    def __init__(
        self,
        *,
        luma_conn_id: str = "luma_default",
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        wait_for_completion: bool = True,
        reuse_existing: bool = True,
        resubmit_unknown: bool = False,
        output_path: Any = None,
        asset_alias: str | None = DEFAULT_ASSET_ALIAS,
        max_cost_usd: float | str | None = None,
        max_run_cost_usd: float | str | None = None,
        review: LumaReview | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        if review is not None and not wait_for_completion:
            raise ValueError("review: not with wait_for_completion=False (there is no take to review yet)")
        if not wait_for_completion and output_path is not None:
            raise ValueError(
                "output_path: not with wait_for_completion=False (the render is not done when the "
                "task returns); store it with LumaDownloadVideoOperator after a LumaGenerationSensor"
            )
        add_alias(kwargs, output_path, asset_alias)
        # A mapped task is built from its expanded values at run time: those are checked in execute(), where a
        # broken rule fails the task without retries instead of raising from the constructor.
        super().__init__(**kwargs)
        # Airflow's apply_defaults pops ``_airflow_from_mapped`` before this runs and records it here instead.
        self._check_at_parse = not getattr(self, "_BaseOperator__from_mapped", False)
        self.luma_conn_id = luma_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.deferrable = deferrable
        self.wait_for_completion = wait_for_completion
        self.reuse_existing = reuse_existing
        self.resubmit_unknown = resubmit_unknown
        self.output_path = output_path
        self.asset_alias = asset_alias
        self.max_cost_usd = max_cost_usd
        self.max_run_cost_usd = max_run_cost_usd
        self.review = review
        self.luma_video_link: str | None = None  # set by the worker when the render is done (LumaVideoLink)
        # Set by the worker once a request is ours, again once its files are stored; never a parameter.
        self.luma_delivery: dict[str, str | None] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every parameter a subclass accepts is templated: a sibling must never take a value it cannot render.
        cls.template_fields = (*cls.PARAMS, *COMMON_TEMPLATE_FIELDS, DELIVERY_FIELD)

    def check_literal_params(self) -> None:
        """Validate literal parameters at DAG-parse time (call at the end of a subclass ``__init__``).

        Besides the model's rules: a literal ``output_path``'s shape and the source facts the upstream Luma task's
        literals give (a reframe to the ratio its source already has; :mod:`.operators._preflight`).
        Prices live in the connection, not in the DAG file, so caps are checked at run start, before any request.

        :raises LumaValidationError: the rule the literal values break; the DAG file fails to import with it.
        """
        if not self._check_at_parse:
            return
        from airflow_provider_luma.operators._literals import check_literal_output_path, check_literals
        from airflow_provider_luma.operators._preflight import source_facts_of

        params = self.spec_params()
        check_literals(self.MODEL_ID, params, source_facts_of(params))
        check_literal_output_path(self.output_path)

    def spec_params(self) -> dict[str, Any]:
        """The (rendered) payload parameters; ``None`` means "not set"."""
        return {name: getattr(self, name) for name in self.PARAMS}

    def build_spec(self, params: dict[str, Any], source: SourceFacts) -> RenderSpec:
        """The model's strict request from the rendered parameters.

        :raises LumaValidationError: one line per broken rule.
        """
        from airflow_provider_luma.core.specs import SPECS

        return SPECS[self.MODEL_ID].validate_params(params, source)

    def run_options(self, context: Context) -> RunOptions:
        """How this task runs (rendered values): everything but the request, cheap to build on every resume.

        :raises LumaValidationError: for a broken ``output_path`` or cap.
        """
        from airflow_provider_luma.core.pricing import parse_max_cost
        from airflow_provider_luma.runtime.end_in_trigger import task_may_end_here
        from airflow_provider_luma.runtime.plan import RunOptions, check_unique_output
        from airflow_provider_luma.runtime.storage import parse_output_path

        output = parse_output_path(self.output_path)
        check_unique_output(output, context)
        deadline = float(self.timeout)
        if self.execution_timeout is not None:
            # execution_timeout is not enforced while deferred (Airflow 3.3.2): honour it in our own deadline.
            deadline = min(deadline, self.execution_timeout.total_seconds())
        return RunOptions(
            task_id=self.task_id,
            model_id=self.MODEL_ID,
            conn_id=self.luma_conn_id,
            deferrable=bool(self.deferrable),
            wait_for_completion=bool(self.wait_for_completion),
            reuse_existing=bool(self.reuse_existing),
            resubmit_unknown=bool(self.resubmit_unknown),
            poll_interval=float(self.poll_interval),
            deadline_seconds=deadline,
            output=output,
            asset_alias=self.asset_alias,
            max_cost=parse_max_cost(self.max_cost_usd),
            max_run_cost=parse_max_cost(self.max_run_cost_usd, "max_run_cost_usd"),
            may_end_in_trigger=task_may_end_here(
                # A reviewed task resumes in a worker to ask, so it never ends in the triggerer.
                has_output=output is not None or self.review is not None,
                reuse_existing=bool(self.reuse_existing),
                do_xcom_push=bool(self.do_xcom_push),
                has_outlets=bool(self.outlets),
                has_success_callback=bool(self.on_success_callback),
                has_mapped_dependants=self._has_mapped_dependants(),
            ),
            multiple_outputs=bool(self.multiple_outputs),
        )

    def _has_mapped_dependants(self) -> bool:
        try:
            return next(self.iter_mapped_dependants(), None) is not None
        except RuntimeError:  # not in a DAG (an operator executed directly): nothing downstream
            return False

    def render_plan(self, context: Context) -> RenderPlan:
        """The whole plan of a fresh start: :meth:`run_options` and the validated request, with what the upstream
        Luma tasks' XComs say about its source and an inline source video checked (read once, hashed).

        :raises LumaValidationError: one line per broken rule, each naming its field.
        """
        from airflow_provider_luma.runtime.plan import RenderPlan, upstream_source_facts

        options = self.run_options(context)
        params = self.render_params(context)
        upstream = upstream_source_facts(context, params.get("source_generation_id"))
        spec = self.build_spec(params, upstream)
        return RenderPlan(options, spec, spec.known_source(upstream))

    def render_params(self, context: Context) -> dict[str, Any]:
        """The parameters of the render this try buys: :meth:`spec_params`, with a reviewer's edits (``review``)."""
        params = self.spec_params()
        if self.review is None:
            return params
        from airflow_provider_luma.runtime.review_loop import current_params

        return current_params(context, params)

    def preflight_problems(
        self, context: Context, spec: RenderSpec, source: SourceFacts, table: PriceTable
    ) -> list[str]:
        """The run pre-flight (:mod:`airflow_provider_luma.operators._preflight`) over this task's DAG."""
        from airflow_provider_luma.operators._preflight import run_problems
        from airflow_provider_luma.runtime.task import context_get

        dag = context_get(context, "dag")
        if dag is None:
            dag = self.get_dag()  # an operator executed directly (a unit test): the DAG it was built in
        return run_problems(self, spec, source, dag, table)

    @records_outcome
    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, then re-attach to this task's earlier render or submit one, then defer (or poll)."""
        from airflow_provider_luma.runtime import flow

        if self.review is None:
            return flow.execute(self, context, lambda: self.render_plan(context))
        from airflow_provider_luma.runtime import review_loop

        approved = review_loop.before_render(self, context, self.review)
        if approved is not None:
            return approved
        return self._reviewed(context, flow.execute(self, context, lambda: self.render_plan(context)))

    def _reviewed(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        """With ``review``: the take is rendered, so ask about it (this raises); without: the result."""
        if self.review is None:
            return result
        from airflow_provider_luma.runtime import review_loop

        review_loop.after_render(self, context, self.review, result)

    @records_outcome
    def execute_review(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Resume on the reviewer's answer (``review``): return the approved take, fail or skip on a rejection,
        or buy the re-render asked for and ask again."""
        from airflow_provider_luma.runtime import flow, review_loop
        from airflow_provider_luma.runtime.plan import validated

        if self.review is None:
            raise ValueError("execute_review: this task has no review")
        options = validated(lambda: self.run_options(context))

        def render() -> dict[str, Any]:
            return self._reviewed(context, flow.execute(self, context, lambda: self.render_plan(context)))

        return review_loop.on_answer(self, context, self.review, event, self.spec_params(), options, render)

    @records_outcome
    def execute_after_rate_limit(
        self, context: Context, event: Any = None, rate_limit_waits: int = 0, **_: Any
    ) -> dict[str, Any]:
        """Resume after waiting out a 429 in the triggerer: submit again (or re-attach, if a try already did)."""
        from airflow_provider_luma.runtime import resume
        from airflow_provider_luma.runtime.plan import validated

        options = validated(lambda: self.run_options(context))
        params = validated(lambda: self.render_params(context))
        plan = lambda: self.render_plan(context)  # noqa: E731 - only when the record cannot give the plan
        result = resume.execute_after_rate_limit(self, context, options, params, rate_limit_waits, plan)
        return self._reviewed(context, result)  # a take found finished here is still reviewed

    @records_outcome
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        """Resume after the trigger fired: return the result or raise with the server's reason."""
        from airflow_provider_luma.runtime import resume
        from airflow_provider_luma.runtime.plan import validated

        options = validated(lambda: self.run_options(context))
        result = resume.execute_complete(self, context, options, event, lambda: self.render_plan(context))
        return self._reviewed(context, result)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: frame URLs, source generations and source videos in; this render's generation and its
        stored files out; the request and generation ids as run facets (see :mod:`.runtime.lineage`).
        """
        from airflow_provider_luma.runtime.lineage import render_lineage

        return render_lineage(self)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage of a failed try: the same datasets as far as they are known, plus the error."""
        from airflow_provider_luma.runtime.lineage import render_lineage

        return render_lineage(self, failed=True)
