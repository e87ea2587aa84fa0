"""A test-only worker: ``starcoder-agents worker`` with the FAKE model of ``tests.server_app``.

Started as ``python -m tests.worker_app`` by the broker tests, with the queue settings
in ``STARCODER_BROKER_URL``, ``STARCODER_REDIS_URL``, ``STARCODER_QUEUE`` and the
shared PostgreSQL checkpointer in ``STARCODER_TEST_CHECKPOINTER``.
"""

from __future__ import annotations

import logging
import os

from service.worker import run_worker
from tests.fakes import scripted_settings
from tests.server_app import FakeServingModels


def main() -> None:
    """Serve runs with the fake model until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(
        FakeServingModels(),
        checkpointer_url=os.environ["STARCODER_TEST_CHECKPOINTER"],
        settings=scripted_settings(test_timeout_s=60.0),
        concurrency=int(os.environ.get("STARCODER_TEST_WORKER_CONCURRENCY", "1")),
        name=os.environ.get("STARCODER_TEST_WORKER_NAME"),
    )


if __name__ == "__main__":
    main()
