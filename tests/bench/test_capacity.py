"""The capacity scenario's arithmetic: what each process's sockets need from Redis."""

from __future__ import annotations

from bench.capacity import demand


def test_a_process_needs_one_message_per_member_here_of_what_others_published() -> None:
    members = {1: [10, 11], 2: [10, 11, 12, 13]}
    process_of = {10: 0, 11: 1, 12: 1, 13: 2}
    # Chat 1 through process 0, chat 2 through process 1 and then through process 2.
    result = demand([(1, 0), (2, 1), (2, 2)], members, process_of, processes=4)
    assert [result.needed[p] for p in range(4)] == [2, 3, 1, 0]
    assert [result.local[p] for p in range(4)] == [1, 2, 1, 0]
    # One shared channel: everything published elsewhere, even to a process with no member.
    assert [result.shared[p] for p in range(4)] == [2, 2, 2, 3]
    # A channel per chat: each message once on each process with a member of its chat.
    assert [result.per_chat[p] for p in range(4)] == [2, 2, 1, 0]
