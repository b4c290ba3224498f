"""The four API families and the base path each is served under."""

RUNTIME = "runtime"
APPPROXY = "appproxy"
MLWORKER = "mlworker"
GPUFARM = "gpufarm"

FAMILIES: tuple[str, ...] = (RUNTIME, APPPROXY, MLWORKER, GPUFARM)


def base_path(family: str) -> str:
    return f"/{family}"
