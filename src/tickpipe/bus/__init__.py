"""tickpipe's message bus: books and events published to, and rebuilt from, NATS JetStream."""
