# test_weekly_social_cut.py: run it with `pytest test_weekly_social_cut.py` (nothing else to set up)
import pendulum
from airflow.sdk import DAG

from airflow_provider_luma.operators import LumaExtendVideoOperator, LumaGenerateVideoOperator

# In your project, import the DAG from its file instead: `from dags.weekly_social_cut import dag`.
with DAG("weekly_social_cut", schedule="@weekly", start_date=pendulum.datetime(2026, 1, 5, tz="UTC")) as dag:
    master = LumaGenerateVideoOperator(task_id="master", prompt="A neon street market at night", resolution="540p")
    longer = LumaExtendVideoOperator(
        task_id="longer", generation_id=master.output["generation_id"], prompt="The camera rises", resolution="540p"
    )
    outro = LumaExtendVideoOperator(
        task_id="outro", generation_id=longer.output["generation_id"], prompt="Fade to the logo", resolution="540p"
    )


def test_weekly_social_cut_renders_a_chain_of_three(luma_airflow):
    run = dag.test()  # a real Airflow run (deferring tasks' triggers run in-process)

    assert run.state == "success"
    requests = luma_airflow.simulator.create_requests()
    assert [r.payload["payload"]["prompt"] for r in requests] == [
        "A neon street market at night",
        "The camera rises",
        "Fade to the logo",
    ]
    assert run.get_task_instance("outro").xcom_pull(key="mode") == "extend_forward"
