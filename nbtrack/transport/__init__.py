"""The user side of the two queues: start the internal process, send records, await results."""
