"""The internal process: handler, writer, sender, transaction log."""
