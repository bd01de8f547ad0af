# htmx stops an `every 1s` poll when the response status is 286.
STOP_POLLING = 286
