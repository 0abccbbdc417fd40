"""Storage on a real S3 endpoint (the session's moto server), a fresh bucket per test."""

from __future__ import annotations

import pytest

from spellray.storage.store import Storage
from tests.s3 import MotoS3


@pytest.fixture
def bucket(moto_s3: MotoS3) -> str:
    return moto_s3.create_bucket()


@pytest.fixture
def s3(moto_s3: MotoS3, bucket: str) -> Storage:
    settings = moto_s3.settings(bucket, "spell")
    return Storage(settings.resolved_storage_uri(), settings)
