"""Front doors that are not requests: work a process runs by itself on a timer or a queue,
each opening its own units of work."""
