"""HTTP-side logic the server wires together.

- :mod:`service.graph_route` — the whole graph as a served runnable with threads and a
  checked input schema.
- :mod:`service.agent_routes` — the single agents (generate, refine, validate, review,
  pep8, coverage, complexity) as typed runnables.
- :mod:`service.threads` — routes over a thread's checkpoints: state, history,
  resume, replay.
- :mod:`service.thread_claims` — one run at a time per thread, whichever route runs
  it: claiming and freeing a thread, the 409, the multitask strategies of ``/lg``.
- :mod:`service.middleware` and :mod:`service.limits` — API keys, body and batch
  limits, bounded concurrent runs; :mod:`service.ratelimit` — a token bucket per
  client; :mod:`service.exposure` — no open server on a public address.
- :mod:`service.lgapi` — the LangGraph Server API (assistants, threads, runs) under
  ``/lg`` for ``RemoteGraph`` and ``langgraph_sdk``; :mod:`service.lgschemas` — its
  request and record shapes; :mod:`service.runs` — how one run executes and streams;
  :mod:`service.localruns` — runs in the server's own process (the default);
  :mod:`service.brokerruns` — runs sent to workers instead, with :mod:`service.jobs`
  (the Celery queue), :mod:`service.runstore` (run records in PostgreSQL),
  :mod:`service.events` (progress and cancels through Redis) and
  :mod:`service.worker` (``starcoder-agents worker``).
- :mod:`service.stats` — counters of finished runs; :mod:`service.info` — health
  and graph pictures. The checkpointer (SQLite or PostgreSQL) is opened by
  :mod:`graph.checkpoint`, for the server as for the command line.
"""
