"""busdoc.reports.dashboard: the terminal dashboard of observed methods (``busdoc dashboard``).

``model`` turns the persisted catalog into rows and pages (plain values, no Textual);
``app`` is the Textual application. Import ``app`` only when the dashboard runs: Textual
is the heaviest import busdoc has.
"""

from __future__ import annotations
