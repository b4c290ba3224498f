"""Telegram frontends: bots that bridge a Telegram chat to a runtime chat chain."""
