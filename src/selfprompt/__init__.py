"""selfprompt: Self-Prompt Tuning (Kong et al., 2024) end to end.

Stages talk through files and the small typed records in `selfprompt.records`:
data -> annotate -> train -> generate -> evaluate -> report.
"""

__version__ = "0.1.0"
