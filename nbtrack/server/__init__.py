"""The tracking server: the W&B wire protocol (GraphQL, file stream, file uploads) over the store."""
