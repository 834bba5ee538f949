"""Front door for work nobody asked for in a request: the AI runner and the media cleanup, each
opening its own units of work on a queue or a timer."""
