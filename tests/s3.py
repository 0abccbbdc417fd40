"""A real S3 endpoint for tests: moto's server as a subprocess on 127.0.0.1, spoken to over
HTTP by pyarrow exactly as a real bucket would be. Its record of answered requests (see
tests/moto_server.py) tells what was fetched."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spellray.settings import Settings
from tests.helpers import end_process, free_port, wait_for

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


@dataclass
class MotoS3:
    """A running moto server and what a test needs to use it."""

    endpoint_url: str
    log_path: Path
    requests_path: Path
    process: subprocess.Popen[bytes]
    buckets: list[str] = field(default_factory=list)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (a fresh name unless given), so tests never share objects."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def env(self, bucket: str, prefix: str = "spell") -> dict[str, str]:
        """The SPELLRAY_* variables that point spellray at ``s3://bucket/prefix``."""
        return {
            "SPELLRAY_STORAGE_URI": f"s3://{bucket}/{prefix}".rstrip("/"),
            "SPELLRAY_STORAGE_ENDPOINT_URL": self.endpoint_url,
            "SPELLRAY_STORAGE_REGION": REGION,
            "SPELLRAY_STORAGE_ACCESS_KEY_ID": ACCESS_KEY,
            "SPELLRAY_STORAGE_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def settings(self, bucket: str, prefix: str = "spell", **extra: Any) -> Settings:
        return Settings(storage_uri=f"s3://{bucket}/{prefix}".rstrip("/"),
                        storage_endpoint_url=self.endpoint_url, storage_region=REGION,
                        storage_access_key_id=ACCESS_KEY,
                        storage_secret_access_key=SECRET_KEY, **extra)

    def object_gets(self, bucket: str, key_prefix: str = "") -> list[str]:
        """Keys of successful object-body GETs in ``bucket`` (not listings: those are GETs of
        the bucket itself), from the server's record of requests, oldest first."""
        return count_object_gets(self.requests_path, bucket, key_prefix)

    def stop(self) -> None:
        end_process(self.process, grace=10)


def count_object_gets(requests_path: Path, bucket: str, key_prefix: str = "") -> list[str]:
    found = []
    for line in requests_path.read_text().splitlines():
        request = json.loads(line)
        _, _, path = request["path"].partition("/")  # path-style: /bucket/key
        name, _, key = path.partition("/")
        if request["method"] == "GET" and 200 <= request["status"] < 300 and name == bucket \
                and key and key.startswith(key_prefix):
            found.append(key)
    return found


def start_moto_server(tmp: Path) -> MotoS3:
    """Start moto's server on a free 127.0.0.1 port; its output goes to a log file, and the
    requests it answered to a record of their own."""
    port = free_port()
    log_path, requests_path = tmp / "moto.log", tmp / "moto-requests.jsonl"
    requests_path.touch()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_server.py")),
             "--port", str(port), "--requests", str(requests_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = MotoS3(endpoint_url=f"http://127.0.0.1:{port}", log_path=log_path,
                    requests_path=requests_path, process=process)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited: {log_path.read_text()[-2000:]}")
        return _answers(server.endpoint_url + "/")

    try:
        wait_for(up, timeout=60, interval=0.1, what="moto_server to answer")
    except BaseException:
        server.stop()
        raise
    return server
