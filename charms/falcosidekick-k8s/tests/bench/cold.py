"""Cold hooks of a falcosidekick-k8s unit with its relations in use, on the real Pebble.

The unit is set up the way tests/real sets one up (real_unit.RealUnit): ops.testing plays
Juju, the container is the real Pebble 1.32.1 chrooted in a container root of its own,
running the real Falcosidekick 2.34.1 with what the charm rendered. Related: certificates
(served over TLS), send-loki-logs, logging (Pebble log targets), metrics-endpoint,
grafana-dashboard, http-endpoint with a Falco unit, and the peer relation. Then the hooks
run cold (libs/testing/cold_hooks.py): fresh interpreters through ``ops.main``, shell-stub
hook tools answering from the unit's last State, the charm's container client pointed at
the same real Pebble. Loki URLs are on the loopback (nothing listens there: Pebble's log
pushes fail quietly, and no alert is sent).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cold_hooks
import sidekick_states as states
import yaml
from local_net import free_port
from ops import testing
from ops.pebble import ChangeState
from real_pebble import RealPebble
from real_unit import SERVICE_ADDRESS, RealUnit
from tls_material import Issued

CHARM = Path(__file__).resolve().parents[2]
UNIT = "falcosidekick-k8s/0"
APP = "falcosidekick-k8s"
FALCO_UNITS = 3

_PRELUDE = """\
import addresses, ops, sidekick
ops.model._ModelBackend.get_pebble = lambda _backend, _path: ops.pebble.Client(
    socket_path={socket!r})
sidekick.NO_TLS_PORT = {no_tls_port!r}
addresses.resolve = {dns!r}.get
"""


@contextmanager
def unit_on_real_pebble(ca: Issued) -> Iterator[tuple[RealUnit, list[cold_hooks.Hook]]]:
    """Yield a converged, related unit on a real Pebble and the hooks to run cold."""
    pebble = RealPebble()
    try:
        loki = f"http://127.0.0.1:{free_port()}/loki/api/v1/push"
        falco = testing.Relation(
            "http-endpoint",
            remote_app_name="falco",
            remote_units_data={n: {} for n in range(FALCO_UNITS)},
        )
        logging = testing.Relation(
            "logging",
            remote_app_name="loki",
            remote_units_data={0: {"endpoint": json.dumps({"url": loki})}},
        )
        relations: set[testing.RelationBase] = {
            falco,
            testing.PeerRelation("sidekick-peers"),
            states.certificates_relation(),
            states.loki_relation(loki),
            logging,
            testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
            testing.Relation("grafana-dashboard", remote_app_name="grafana"),
        }
        unit = RealUnit.start(pebble, {}, relations)
        unit.serve_certificate(ca)
        for endpoint in ("metrics-endpoint", "grafana-dashboard"):
            unit.run(unit.ctx.on.relation_created(unit.relation(endpoint)))
        unit.run(unit.ctx.on.relation_changed(unit.relation("logging"), remote_unit=0))
        # Settled: these change nothing more (the bench checks it below).
        unit.run(unit.ctx.on.update_status())
        unit.run(unit.ctx.on.config_changed())
        loki_relation = unit.relation("send-loki-logs")
        hooks = [
            cold_hooks.hook("update-status"),
            cold_hooks.hook("config-changed"),
            cold_hooks.relation_hook("changed", loki_relation, "otelcol", 0),
        ]
        yield unit, hooks
    finally:
        pebble.stop()


def measure(base: Path, ca: Issued, rounds: int = cold_hooks.ROUNDS) -> dict[str, Any]:
    """Run the unit's no-op hooks cold ``rounds`` times; return the figures per hook."""
    with unit_on_real_pebble(ca) as (unit, hooks):
        charmcraft = CHARM / "charmcraft.yaml"
        answers = cold_hooks.answers_from_state(
            unit.state, APP, 0, cold_hooks.config_defaults(charmcraft)
        )
        cold_hooks.with_relation_ids(answers, _endpoints(charmcraft))
        prelude = _PRELUDE.format(
            socket=unit.pebble.socket_path,
            no_tls_port=unit.no_tls_port,
            dns={states.SERVICE_FQDN: SERVICE_ADDRESS},
        )
        probe = cold_hooks.Probe(
            charm=CHARM,
            unit=UNIT,
            model=states.MODEL,
            answers=answers,
            prelude=prelude,
        )
        cold = cold_hooks.ColdHooks(probe, base, unit.state)
        plan = unit.pebble.client().get_plan().to_yaml()
        changes = len(unit.pebble.client().get_changes(select=ChangeState.ALL))

        def unchanged(_unit: str, hook: cold_hooks.Hook) -> None:
            client = unit.pebble.client()
            if (
                client.get_plan().to_yaml() != plan
                or len(client.get_changes(select=ChangeState.ALL)) != changes
            ):
                raise RuntimeError(
                    f"cold {hook.label} changed the Pebble plan or started a change"
                )

        return cold_hooks.measure({"falcosidekick-k8s": (cold, hooks)}, rounds, unchanged)


def _endpoints(charmcraft: Path) -> list[str]:
    data = yaml.safe_load(charmcraft.read_text())
    return [name for role in ("provides", "requires", "peers") for name in data.get(role, {})]
