"""S3 upload throughput: the provider's storage path vs a raw boto3 upload of the same bytes to the same server.

moto's S3 server runs as a real HTTP server on 127.0.0.1 (in this process, one thread per request). The bytes come
from memory, so only the storage side is measured:

* ``sink``: ``StorageSink`` on ``ObjectStoragePath("s3://conn@bucket/key")``, written in 1 MiB chunks as
  ``download()`` writes them, then ``commit()`` (s3fs: one PUT up to 50 MiB, else a multipart upload of 50 MiB
  parts; then one HEAD for the size check). This is what a render's ``output_path`` does.
* ``temp+rename``: what the sink did before (and still does on local disks): upload to a temporary key, then
  ``rename`` (s3fs: server-side copy plus delete). For the record only.
* ``boto3 put_object``: one PUT of the whole body.
* ``boto3 upload_fileobj``: boto3's managed transfer (8 MiB parts, 10 threads).

Figures: MiB/s (best of ``--repeat``) and each path's ratio to the best boto3 figure. It fails when a stored object
differs, an upload is left open, or the sink is slower than the temporary name plus rename it replaced.

    python benchmarks/s3_upload.py [--sizes 16,128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness._services import S3Server  # noqa: E402

BUCKET = "luma-bench"
CONN = "aws_luma_bench"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="16,128", help="MiB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with S3Server(BUCKET) as s3:
        os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = s3.airflow_conn_json()
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_luma.runtime.storage import StorageSink

        client = s3.client()

        def sink(key: str, data: bytes) -> None:
            target = StorageSink(ObjectStoragePath(f"s3://{CONN}@{BUCKET}/{key}"))
            view = memoryview(data)
            with target.open() as handle:
                for offset in range(0, len(data), 1 << 20):
                    handle.write(view[offset : offset + (1 << 20)])
            target.commit(len(data))

        def temp_rename(key: str, data: bytes) -> None:
            final = ObjectStoragePath(f"s3://{CONN}@{BUCKET}/{key}")
            temp = final.parent / f".{final.name}.part"
            view = memoryview(data)
            with temp.fs.open(temp.path, "wb") as handle:
                for offset in range(0, len(data), 1 << 20):
                    handle.write(view[offset : offset + (1 << 20)])
            temp.rename(final)

        def put_object(key: str, data: bytes) -> None:
            client.put_object(Bucket=BUCKET, Key=key, Body=data)

        def upload_fileobj(key: str, data: bytes) -> None:
            client.upload_fileobj(io.BytesIO(data), BUCKET, key)

        paths: dict[str, Callable[[str, bytes], None]] = {
            "sink": sink,
            "temp+rename": temp_rename,
            "boto3 put_object": put_object,
            "boto3 upload_fileobj": upload_fileobj,
        }
        sink("warm-up", b"x")  # connection set-up and imports are not part of the figures
        print(f"{'size':>8}  {'path':<22} {'MiB/s':>8}  {'vs boto3':>8}")
        worst, versus_rename = float("inf"), float("inf")
        for size_mib in (int(s) for s in args.sizes.split(",")):
            data = os.urandom(size_mib << 20)
            rates: dict[str, float] = {}
            for name, upload in paths.items():
                best = float("inf")
                for attempt in range(args.repeat):
                    key = f"bench/{name.replace(' ', '_')}/{size_mib}-{attempt}.bin"
                    started = time.perf_counter()
                    upload(key, data)
                    best = min(best, time.perf_counter() - started)
                    stored = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                    assert stored == data, f"{name}: stored bytes differ"
                    client.delete_object(Bucket=BUCKET, Key=key)
                rates[name] = size_mib / best
            reference = max(rates["boto3 put_object"], rates["boto3 upload_fileobj"])
            for name, rate in rates.items():
                print(f"{size_mib:>5} MiB  {name:<22} {rate:>8.1f}  {rate / reference:>7.2f}x")
            worst = min(worst, rates["sink"] / reference)
            versus_rename = min(versus_rename, rates["sink"] / rates["temp+rename"])
        leftovers = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        print(f"open multipart uploads left: {len(leftovers)}")
        ok = versus_rename >= 1.0 and not leftovers
        print(f"sink vs best boto3 (worst size): {worst:.2f}x; vs temp+rename: {versus_rename:.2f}x (must be >= 1)")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
