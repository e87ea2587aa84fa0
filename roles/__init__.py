"""What each model-calling role does, as plain functions of a call context and inputs.

- :mod:`roles.context`: the :class:`~roles.context.CallContext` every role takes (the
  model provider, the run's settings and config, the cost so far) and
  :func:`~roles.context.call_model`, the one way a role asks its model.
- :mod:`roles.code`: the generator (write code for a task).
- :mod:`roles.tests`: the tester (write pytest tests from the task and the interface).
- :mod:`roles.fix`: the refiner (fix code from its problems).
- :mod:`roles.review`: the reviewer (static measures and a model's review).
- :mod:`roles.arbiter`: a second opinion on failing tests.
- :mod:`roles.candidates`: several candidates ranked by execution, and re-asks for new code.
- :mod:`roles.checks`: running an attempt's tests in the sandbox (no model).

The graph's nodes, the single-agent HTTP routes, the command line and the benchmarks
all call these functions, so a role behaves the same wherever it runs. Roles never
import the nodes, the graph builder, the server or the command line; they read the
settings and state types of :mod:`graph.config` and :mod:`graph.state` for type
checking only, so importing a role never loads the graph.
"""
