"""Kafka edges: the consumer source, the state changelog, the dead-letter topic, the producer."""
