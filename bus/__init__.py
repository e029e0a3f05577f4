"""Cross-cutting plumbing of govbus: settings, logging, Kafka client config, errors and the CLI."""
