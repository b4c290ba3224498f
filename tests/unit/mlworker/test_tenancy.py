"""The one tenancy rule: a worker takes its owner's work, or everyone's once an admin shared it."""

from aiplane.mlworker.tenancy import admits


def test_a_worker_admits_its_owners_work_only_unless_shared():
    assert admits("alice", False, "alice")
    assert not admits("alice", False, "bob")
    assert admits("admin", True, "bob") and admits("admin", True, "admin")
    assert not admits(None, False, None)  # a worker with no recorded owner takes nothing
