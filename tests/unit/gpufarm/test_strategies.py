"""Each load-balancing strategy over a fixed load table."""

import pytest

from aiplane.errors import UnavailableError
from aiplane.gpufarm.loadbalancer import STRATEGIES, AgentLoad, choose

TABLE = [
    AgentLoad("i-c", "http://c", connections=2, load=0.70, response_time_ms=30, weight=1),
    AgentLoad("i-a", "http://a", connections=9, load=0.20, response_time_ms=80, weight=3),
    AgentLoad("i-b", "http://b", connections=4, load=0.90, response_time_ms=12, weight=2),
]


def picks(strategy: str, turns: int) -> list[str]:
    return [choose(strategy, TABLE, turn).instance_id for turn in range(turns)]


def test_round_robin_rotates_in_instance_order():
    assert picks("round_robin", 6) == ["i-a", "i-b", "i-c", "i-a", "i-b", "i-c"]


def test_weighted_round_robin_gives_each_its_weight_of_turns():
    assert picks("weighted_round_robin", 7) == ["i-a", "i-a", "i-a", "i-b", "i-b", "i-c", "i-a"]


def test_equal_weighted_picks_the_least_utilised():
    assert set(picks("equal_weighted", 4)) == {"i-a"}


def test_least_connections_picks_the_fewest_open_connections():
    assert set(picks("least_connections", 4)) == {"i-c"}


def test_least_response_time_picks_the_fastest():
    assert set(picks("least_response_time", 4)) == {"i-b"}


def test_ties_go_to_the_lower_instance_id():
    tied = [AgentLoad("i-2", "u", 1, 0.5, 10), AgentLoad("i-1", "u", 1, 0.5, 10)]
    assert {choose(strategy, tied, 0).instance_id for strategy in STRATEGIES} == {"i-1"}


def test_no_agents_is_unavailable():
    with pytest.raises(UnavailableError):
        choose("round_robin", [], 0)
