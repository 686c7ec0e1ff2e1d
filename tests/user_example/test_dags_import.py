# test_dags_import.py: every DAG file imports, so a literal mistake (a rule, a run cap, a relative output_path)
# fails here, not on the schedule. Airflow 3.2 moved DagBag to airflow.dag_processing.dagbag; parsing needs no
# metadata database.
from pathlib import Path

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

DAGS = Path(__file__).parent / "dags"  # the folder your DAG files live in


def test_every_dag_file_imports() -> None:
    bag = DagBag(dag_folder=DAGS, safe_mode=False)
    errors = "\n\n".join(f"{path}:\n{error}" for path, error in bag.import_errors.items())
    assert not bag.import_errors, errors  # each file's error names the field and the rule
    assert bag.dag_ids, "no DAG found: is DAGS the right folder?"
