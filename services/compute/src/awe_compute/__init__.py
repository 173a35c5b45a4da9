"""AWE compute: a job API that plans targets, and workers (a Kafka consumer group) that
make them."""
