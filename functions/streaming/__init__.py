"""The entry point of the streaming functions behind the Lambda Web Adapter (see aiplane_shared.streaming)."""
