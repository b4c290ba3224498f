"""The Backend.AI-style app proxy coordinator: workers, slots, circuits, endpoints, tokens."""
