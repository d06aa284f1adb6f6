"""`ulm replay`: what other policies would have done over what ULM really recorded.

`load` rebuilds the cluster and its load from a store (read-only), `recorded` measures what
really happened over the same span, `run` replays the recording through the simulator once per
policy. docs/replay.md describes the rules (buckets, gaps, what each figure means).
"""
