"""What every scenario is given: the cluster it runs against, the sizes of this run (full or
quick) and a client."""

from __future__ import annotations

from dataclasses import dataclass

from bench.client import HttpClient
from bench.cluster import Cluster


@dataclass(frozen=True)
class Sizes:
    quick: bool = False
    latency_users: int = 200
    latency_rates: tuple[float, ...] = (100, 500, 1000)
    latency_seconds: float = 10.0
    fanout_members: int = 1000
    fanout_messages: int = 100
    fanout_rate: float = 10.0
    throughput_users: int = 200
    throughput_rates: tuple[float, ...] = (50, 100, 200, 350, 500, 1000, 1500, 2000, 3000)
    throughput_seconds: float = 5.0
    ceiling_connections: int = 8
    ceiling_seconds: float = 5.0
    ceiling_warm_up_seconds: float = 1.0
    round_trip_requests: int = 50
    sockets: int = 5000
    resume_events: int = 1000
    resume_runs: int = 5
    ai_tokens: int = 1000
    ai_runs: int = 5
    ai_paced_runs: int = 2
    ai_paced_delay: float = 0.002
    validations: int = 20_000
    startup_runs: int = 5
    polling_users: int = 300
    polling_seconds: float = 20.0
    polling_messages: int = 20
    chat_list_chats: int = 50
    chat_list_requests: int = 500
    capacity_users: int = 400
    capacity_messages: int = 600
    capacity_rate: float = 60.0


FULL = Sizes()
QUICK = Sizes(
    quick=True,
    latency_users=20,
    latency_rates=(50,),
    latency_seconds=3.0,
    fanout_members=50,
    fanout_messages=20,
    throughput_users=20,
    throughput_rates=(25, 50),
    throughput_seconds=2.0,
    ceiling_seconds=2.0,
    ceiling_warm_up_seconds=0.5,
    round_trip_requests=10,
    sockets=200,
    resume_events=100,
    resume_runs=2,
    ai_tokens=200,
    ai_runs=2,
    ai_paced_runs=0,
    validations=2_000,
    startup_runs=2,
    polling_users=60,
    polling_seconds=5.0,
    polling_messages=5,
    chat_list_requests=100,
    capacity_users=32,
    capacity_messages=40,
    capacity_rate=40.0,
)


@dataclass
class Context:
    cluster: Cluster
    sizes: Sizes
    http: HttpClient
    base_id: int  # telegram ids of this scenario start here

    @property
    def workers(self) -> int:
        return len(self.cluster.workers)

    def goal(self, met: bool) -> bool | None:
        """Speed goals are judged on full runs only: quick sizes are not the goals' sizes."""
        return None if self.sizes.quick else met
