"""Building blocks for ops.testing states of the falcosidekick-k8s charm (tests and bench).

The remote sides are played for real: a certificates provider that signs the CSR our unit
wrote (with a CA from tls_material), an ingress provider that answers with a URL, Loki units
that publish push endpoints. The container's /etc/falcosidekick is a mount on a real
directory, so what the charm wrote in one run is there in the next, as in a real pod.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ops import testing
from tls_material import Issued, sign_csr

CONTAINER = "falcosidekick"
CONFIG_DIR = "/etc/falcosidekick"
MODEL = testing.Model(name="fmodel", uuid="00000000-0000-4000-8000-000000000001")
SERVICE_FQDN = "falcosidekick-k8s.fmodel.svc.cluster.local"
POD_FQDN = "falcosidekick-k8s-0.falcosidekick-k8s-endpoints.fmodel.svc.cluster.local"
CLUSTER_IP = "10.152.183.17"
# What the unit is, as every COS interface describes it (metadata, scrape_metadata, ...).
TOPOLOGY = {
    "model": "fmodel",
    "model_uuid": "00000000-0000-4000-8000-000000000001",
    "application": "falcosidekick-k8s",
    "unit": "falcosidekick-k8s/0",
    "charm_name": "falcosidekick-k8s",
}
# Name resolution as seen from inside the pod: the Service name resolves to its ClusterIP.
POD_DNS = {SERVICE_FQDN: CLUSTER_IP}


@functools.cache
def image_app_dir() -> Path:
    """Return the image's /app: the falcosidekick binary where the upstream image has it.

    Built once per test process; the image is read-only, so every container shares it.
    """
    app = Path(tempfile.mkdtemp(prefix="falcosidekick-image-app-"))
    binary = app / "falcosidekick"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return app


def container(
    root: Path, can_connect: bool = True, image_app: Path | None = None, **kwargs: Any
) -> testing.Container:
    """Return the workload container with its config directory kept in ``root``.

    The image's /app comes from ``image_app`` (default: the upstream layout, see
    image_app_dir); pass an empty directory for an image without the binary there.
    """
    mounts = {
        "config": testing.Mount(location=CONFIG_DIR, source=root),
        "image-app": testing.Mount(location="/app", source=image_app or image_app_dir()),
    }
    return testing.Container(CONTAINER, can_connect=can_connect, mounts=mounts, **kwargs)


def state(root: Path, **kwargs: Any) -> testing.State:
    """Return a state in the test model with the container rooted at ``root``."""
    kwargs.setdefault("containers", {container(root)})
    kwargs.setdefault("model", MODEL)
    return testing.State(**kwargs)


def rendered_config(root: Path) -> dict[str, Any]:
    """Return the sidekick config the charm wrote, parsed back."""
    data = yaml.safe_load((root / "falcosidekick.yaml").read_text())
    assert isinstance(data, dict)
    return data


def requested_csrs(relation: testing.Relation) -> list[str]:
    """Return the CSRs our unit put in its bag on ``relation``."""
    raw = relation.local_unit_data.get("certificate_signing_requests", "[]")
    return [request["certificate_signing_request"] for request in json.loads(raw)]


def issue_certificates(relation: testing.Relation, ca: Issued, days: int = 90) -> testing.Relation:
    """Return ``relation`` with the provider's answer to every CSR of our unit."""
    answers = [
        {
            "certificate_signing_request": csr,
            "certificate": (cert := sign_csr(csr, ca, days)),
            "ca": ca.cert_pem,
            "chain": [cert, ca.cert_pem],
        }
        for csr in requested_csrs(relation)
    ]
    return dataclasses.replace(relation, remote_app_data={"certificates": json.dumps(answers)})


def ingress_relation(
    url: str | None = None, remote_app_name: str = "traefik", **kwargs: Any
) -> testing.Relation:
    """Return an ingress relation, answered with ``url`` when given."""
    data = {"ingress": json.dumps({"url": url})} if url else {}
    return testing.Relation(
        "ingress", remote_app_name=remote_app_name, remote_app_data=data, **kwargs
    )


def loki_relation(*urls: str, **kwargs: Any) -> testing.Relation:
    """Return a send-loki-logs relation whose units publish ``urls``, one each."""
    units = {number: {"endpoint": json.dumps({"url": url})} for number, url in enumerate(urls)}
    return testing.Relation(
        "send-loki-logs",
        remote_app_name="otelcol",
        remote_units_data=units or {0: {}},
        **kwargs,
    )


def relation(out: testing.State, endpoint: str) -> testing.Relation:
    """Return the only relation of ``endpoint`` in ``out``."""
    (found,) = (r for r in out.relations if r.endpoint == endpoint)
    assert isinstance(found, testing.Relation)
    return found


def peer_relation(out: testing.State, endpoint: str = "sidekick-peers") -> testing.PeerRelation:
    """Return the peer relation of ``endpoint`` in ``out``."""
    (found,) = (r for r in out.relations if r.endpoint == endpoint)
    assert isinstance(found, testing.PeerRelation)
    return found


def replace_relation(
    out: testing.State, new: testing.RelationBase, **kwargs: Any
) -> testing.State:
    """Return ``out`` with ``new`` in place of the relation that has its id."""
    relations = {r for r in out.relations if r.id != new.id} | {new}
    return dataclasses.replace(out, relations=relations, **kwargs)


def with_certificate(ctx: testing.Context[Any], start: testing.State, ca: Issued) -> testing.State:
    """Run ``start`` (which has a certificates relation) until a certificate is served.

    The unit writes its CSR on relation-created; the provider answers on relation-changed.
    """
    created = ctx.run(ctx.on.relation_created(relation(start, "certificates")), start)
    answered = issue_certificates(relation(created, "certificates"), ca)
    return ctx.run(
        ctx.on.relation_changed(answered, remote_unit=0), replace_relation(created, answered)
    )


def certificates_relation() -> testing.Relation:
    """Return a certificates relation with a self-signed-certificates provider."""
    return testing.Relation("certificates", remote_app_name="self-signed-certificates")
