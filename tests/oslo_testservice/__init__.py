"""A small oslo.messaging service (compute-like RPC API plus notifications) whose
argument shapes are declared as data in ``declared.py``, so inference can be checked
against what the code really sends.
"""
