"""Example: the same broker as a plain context manager, for unittest (or any script)."""

from __future__ import annotations

import unittest

from confluent_kafka import Producer

from kbroker.testing import Broker


class OrdersTest(unittest.TestCase):
    broker: Broker

    @classmethod
    def setUpClass(cls) -> None:
        cls.broker = Broker().start()  # ephemeral: free port, temp dir; stop() removes it

    @classmethod
    def tearDownClass(cls) -> None:
        cls.broker.stop()

    def test_produce(self) -> None:
        producer = Producer({"bootstrap.servers": self.broker.bootstrap_servers})
        producer.produce("orders", b"hello")  # auto-created, as on Kafka
        self.assertEqual(producer.flush(10), 0)
