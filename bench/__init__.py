"""The benchmark suite (`make bench`, `make bench-quick`).

Real servers on loopback (`python -m webapp_api` processes on a fresh PostgreSQL database, a
private Redis, a fake LLM vendor) driven by load generator processes (`python -m bench.load`)
that speak the public protocol: signed initData, REST over HTTP/1.1, WebSocket frames.
`python -m bench.run` orchestrates the scenarios and writes the results.
"""
