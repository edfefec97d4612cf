"""Client drivers: one program per client that speaks the driver protocol (compat/session.py).

The Python ones are modules here (`python -m compat.clients.confluent`); KafkaJS is a Node
script in `kafkajs/`, sarama a Go program in `go/`.
"""
