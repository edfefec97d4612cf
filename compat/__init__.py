"""Client compatibility checks: real Kafka clients, one scenario x client matrix, any broker.

`python -m compat --kbroker | --mock | --bootstrap HOST:PORT`; see compat/README.md. Nothing
here imports kbroker: the harness speaks Kafka through `protocol`, and `--kbroker` only runs
`python -m kbroker` as a child process.
"""
