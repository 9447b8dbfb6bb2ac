"""The delivery side: events in, matching, the V1 body, sending, retries, runner."""
