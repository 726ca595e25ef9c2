"""What a launched container consumed, and what it violated (the seed report's phase 3).

`figures.py` is the vocabulary every part shares: a `Sample`, a `Figure` that says where it came
from, a `Violation` with its threshold and evidence, and the `Usage` summary of one run. The
samplers (the container's cgroup files when the engine is local, the Engine API's stats stream
otherwise) and the judge of violations live beside it; the history stores and reports read
`Usage`.
"""
