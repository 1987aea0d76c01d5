"""A small oslo.messaging service (compute-like RPC API plus notifications) whose
argument shapes are declared as data in ``declared.py``, so inference can be checked
against what the code really sends.

The directory shares its name with the ``oslo_service`` distribution from PyPI, so
load it by path (``tests/captures/make_captures.py`` shows how), never by ``import
oslo_service``.
"""
