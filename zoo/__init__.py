"""usgan.zoo: naming models (SOURCE), the zoo index, the Hub, model cards.

Plugins add entries with the ``register_zoo_entries`` hook: ``register(ZooEntry(...))``.
"""

from .index import ZooEntry

__all__ = ["ZooEntry"]
