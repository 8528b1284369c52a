"""Online mode: the HTTP client of a tracking server and the sender backend built on it."""
