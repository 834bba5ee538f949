"""The soak (`make soak`, `python -m bench.soak`): delivery under faults, checked against the
database. How it works and how to read its output: docs/RELIABILITY.md.

- `plan`: the options, the phases and the seeded plan of sends.
- `clients`: one simulated Mini App client per user: a socket that resumes after every drop,
  and the log of every event it received.
- `sends`: the sends over REST, the Aeon route and the socket, retried until confirmed.
- `faults`: the phases and their faults (socket aborts, Redis and API process kills, a client
  that stops reading).
- `verdict`: the truth from the database and the events route, and what the clients got.
- `run`: the orchestration.
"""
