"""Photos: evidence taken on devices. Metadata travels through sync; the bytes are uploaded."""
