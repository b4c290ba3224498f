"""HTTP conventions every family shares: envelopes, auth, the app factory, the Lambda entry."""
