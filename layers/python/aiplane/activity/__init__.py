"""Request activity for /activity/*: what the runtime records itself, plus the identity audit
trail and chain runs read where they already are."""
