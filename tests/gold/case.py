"""One hand-written gold case: the task, a real item id, the model style, what the model wrote, the right extraction."""

from collections import namedtuple

Case = namedtuple("Case", "task item style output trigger expected note")
