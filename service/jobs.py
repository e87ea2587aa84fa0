"""Runs as durable jobs: the queue's settings and the Celery app both sides share.

A run is one Celery message (its id; the request itself is in the run's PostgreSQL
record). The settings make a lost worker cost nothing: a message is acknowledged only
when its run has ended (``acks_late``), a worker takes one message at a time
(``prefetch_multiplier=1``), and a message whose worker died — killed, or cut off
from the broker — goes back to the queue for another worker (RabbitMQ requeues the
unacknowledged messages of a closed connection; ``reject_on_worker_lost``). Publishing
waits for the broker's confirm and retries through a short outage.

Why Celery on RabbitMQ: both are long-lived, widely deployed and packaged by Debian
(``rabbitmq-server``); RabbitMQ's per-message acknowledgements give requeue on worker
loss without a visibility timeout to tune (Redis as a Celery broker redelivers only
after one), and Celery's worker runs anywhere Python does. See the README for what
the choice costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celery import Celery

from envconfig import env_value

__all__ = ["RUN_TASK", "QueueSettings", "celery_app"]

RUN_TASK = "starcoder.run"


@dataclass(frozen=True, kw_only=True)
class QueueSettings:
    """Where runs go when they leave the API process.

    Each field defaults to its ``STARCODER_<FIELD>`` environment variable (for example
    ``STARCODER_LEASE_S``), read by :mod:`envconfig`'s one rule: empty is unset, and a
    value that does not parse is refused, naming the variable.

    Attributes:
        broker_url: The broker (``amqp://user:password@host:5672//``); empty: runs
            execute in the API process (the default).
        redis_url: Redis for run progress and cancels.
        queue: The queue's name; also the prefix of the Redis keys, so deployments
            (or test runs) sharing a broker and a Redis stay apart.
        lease_s: How long a worker's hold on a run lasts without renewal (it renews
            every third of it); a run whose worker vanished is taken over after this.
    """

    broker_url: str = field(default_factory=lambda: env_value("STARCODER_BROKER_URL", ""))
    redis_url: str = field(default_factory=lambda: env_value("STARCODER_REDIS_URL", "redis://127.0.0.1:6379/0"))
    queue: str = field(default_factory=lambda: env_value("STARCODER_QUEUE", "starcoder-runs"))
    lease_s: float = field(default_factory=lambda: env_value("STARCODER_LEASE_S", 30.0))

    @property
    def enabled(self) -> bool:
        """Whether runs go through the broker."""
        return bool(self.broker_url)


def celery_app(settings: QueueSettings) -> Celery:
    """The Celery app for ``settings``: the API side sends with it, the worker consumes with it."""
    app = Celery("starcoder-agents", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,  # the run's lease decides, not the socket
        worker_enable_remote_control=False,  # no per-host control queue: cancels go through Redis
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=10,
        broker_transport_options={"confirm_publish": True},
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 30, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    )
    return app
