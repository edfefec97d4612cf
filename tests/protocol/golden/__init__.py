"""Golden request frames captured from real Kafka clients, and the tool that captures them.

`index.json` lists every stored frame; `python -m tests.protocol.golden.capture` rewrites them.
"""
