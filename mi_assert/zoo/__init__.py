"""The offline model zoo: planted-circuit and self-trained tiny models (no hub needed)."""

from mi_assert.zoo.registry import (
    CHECKPOINT_ROOT,
    ZooEntry,
    ZooSpec,
    available,
    entries,
    get,
    is_zoo_spec,
    manifest,
    parse_spec,
)

__all__ = [
    "CHECKPOINT_ROOT",
    "ZooEntry",
    "ZooSpec",
    "available",
    "entries",
    "get",
    "ground_truth",
    "is_zoo_spec",
    "manifest",
    "parse_spec",
]


def ground_truth(spec: str):  # type: ignore[no-untyped-def]
    """The :class:`~mi_assert.zoo.planted.PlantedCircuit` of a planted zoo spec; for a compiled
    Tracr model, the compiler's graph as an edge :class:`~mi_assert.edges.Circuit`."""
    from mi_assert.zoo.planted import build_planted_induction

    parsed = parse_spec(spec)
    if get(parsed.name).kind != "planted":
        raise ValueError(f"{spec!r} is not a planted model; ground truth is known only for planted ones")
    if parsed.name.startswith("tracr-"):
        from mi_assert.zoo.tracr_circuits import ground_truth_edges

        return ground_truth_edges(spec)
    _, circuit = build_planted_induction(seed=parsed.seed or 0)
    return circuit
