"""``output_path`` on real S3 semantics: moto's S3 server over HTTP on 127.0.0.1, through ``ObjectStoragePath``.

S3 has no rename and shows an object only once its upload is complete; the sink writes straight to the final
key with a deferred commit (see ``StorageSink``). These tests read the bucket with boto3, as another machine would.
"""

from __future__ import annotations

import gc
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_luma.core.media import download, media_client
from airflow_provider_luma.exceptions import LumaDownloadError, LumaValidationError
from airflow_provider_luma.runtime.storage import StorageSink, parse_output_path, probe_writable
from airflow_provider_luma.testing import Fault, LumaSimulatorServer
from airflow_provider_luma.testing._media import sample_mp4
from tests._helpers import deliver_after_the_url_expired, finished_render, media_requests
from tests.harness._services import S3Server

BUCKET = "luma-clips"
CONN = "aws_luma_s3_test"  # its own id: Airflow caches one filesystem per connection id
log = logging.getLogger("test_storage_s3")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server(BUCKET) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty bucket and the connection to it; yields a boto3 client."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", s3.airflow_conn_json())
    client = s3.client()
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def keys(client: Any) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def open_uploads(client: Any) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


class WatchedSink(StorageSink):
    """Records what a reader of the bucket sees just before the object is published."""

    def __init__(self, final: ObjectStoragePath, client: Any) -> None:
        super().__init__(final)
        self.client = client
        self.seen_before_commit: list[list[str]] = []

    def commit(self, size: int) -> None:
        self.seen_before_commit.append(keys(self.client))
        super().commit(size)


@pytest.mark.luma_simulator(video_size_bytes=56 * 1024 * 1024 + 7)  # two parts of s3fs's 50 MiB blocks
def test_clip_lands_byte_for_byte_and_no_reader_sees_it_before_it_is_complete(
    luma_simulator: LumaSimulatorServer, bucket: Any
) -> None:
    render = finished_render(luma_simulator)
    with urllib.request.urlopen(render["video_url"]) as response:
        served = response.read()
    luma_simulator.simulator.inject(Fault.cut_body(after_bytes=52 * 1024 * 1024))  # after the first part
    sink = WatchedSink(ObjectStoragePath(f"s3://{CONN}@{BUCKET}/clips/v.mp4"), bucket)
    stats = download(media_client(), lambda fresh: render["video_url"], sink, label="video", sleep=lambda s: None)
    body = bucket.get_object(Bucket=BUCKET, Key="clips/v.mp4")["Body"].read()
    assert stats.attempts == 2 and len(body) == 56 * 1024 * 1024 + 7 and body == served
    assert sink.seen_before_commit == [[]], "nothing under any key until the upload is completed"
    assert keys(bucket) == ["clips/v.mp4"] and open_uploads(bucket) == [], "no temporary object, no open upload"


def test_a_download_that_keeps_failing_leaves_no_object_and_no_open_upload(
    luma_simulator: LumaSimulatorServer, bucket: Any
) -> None:
    render = finished_render(luma_simulator)
    luma_simulator.simulator.inject(Fault.cut_body(after_bytes=1000, times=10))
    sink = StorageSink(ObjectStoragePath(f"s3://{CONN}@{BUCKET}/clips/broken.mp4"))
    with pytest.raises(LumaDownloadError, match="got 1000 bytes but the server announced"):
        download(media_client(), lambda fresh: render["video_url"], sink, label="video", sleep=lambda s: None)
    del sink
    gc.collect()  # an unclosed fsspec file closes itself (= publishes) when collected; ours must not
    assert keys(bucket) == [] and open_uploads(bucket) == []


def test_expired_url_is_refreshed_and_the_clip_is_stored_in_the_bucket(
    luma_simulator: LumaSimulatorServer, bucket: Any
) -> None:
    render, result = deliver_after_the_url_expired(
        luma_simulator, f"s3://{CONN}@{BUCKET}/renders/{{generation_id}}.mp4"
    )
    key = f"renders/{render['generation_id']}.mp4"
    assert result["video_path"] == f"s3://{CONN}@{BUCKET}/{key}" and result["video_bytes"] == len(sample_mp4())
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == sample_mp4()
    assert media_requests(luma_simulator) == [403, 200] and keys(bucket) == [key]


def test_write_probe_fails_before_spend_for_a_missing_bucket(bucket: Any) -> None:
    spec = parse_output_path(f"s3://{CONN}@no-such-bucket/videos/")
    assert spec is not None
    with pytest.raises(LumaValidationError, match="cannot write to .*no-such-bucket.*nothing was submitted"):
        probe_writable(spec)
    assert keys(bucket) == []


def test_write_probe_fails_before_spend_when_writes_are_denied(
    s3: S3Server, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only IAM user (moto then checks every request's credentials and policies, as AWS does)."""
    import json

    import boto3

    iam = boto3.client(
        "iam", endpoint_url=s3.endpoint_url, region_name=s3.REGION,
        aws_access_key_id=s3.ACCESS_KEY, aws_secret_access_key=s3.SECRET_KEY,
    )  # fmt: skip
    iam.create_user(UserName="reader")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
                                                       "Resource": "*"}]}  # fmt: skip
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    conn = {"conn_type": "aws", "login": key["AccessKeyId"], "password": key["SecretAccessKey"],
            "extra": {"endpoint_url": s3.endpoint_url, "region_name": s3.REGION}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_LUMA_READER", json.dumps(conn))
    from moto import settings

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # from now on moto enforces IAM
    spec = parse_output_path(f"s3://aws_luma_reader@{BUCKET}/videos/")
    assert spec is not None
    with pytest.raises(LumaValidationError, match=r"cannot write to .*(AccessDenied|PermissionError).*nothing was"):
        probe_writable(spec)
    monkeypatch.undo()
    assert keys(bucket) == []
