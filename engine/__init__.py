"""Documents in, answers out: readers, prefill, the KV pot, memory units."""
