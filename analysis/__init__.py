"""Deterministic analysis of code and model replies: no model, no execution of code.

- :mod:`analysis.parsing` pulls code and review verdicts out of model text.
- :mod:`analysis.interface` describes a module's public interface without its bodies.
- :mod:`analysis.pep8` and :mod:`analysis.complexity` measure style and complexity.
- :mod:`analysis.scoring` combines the measures into one review score.
"""
