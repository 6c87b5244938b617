"""Validate Sonata bodies against MEF's Sonata definitions and the Internet Access product schema.

The sibling of :mod:`tests.support.mef` for ``sonata-sdk-latest`` (under ``INTERLUDE_MEF_SDK``, default
``../shared/mef``); tests skip with a message where it is absent. MEF's own defects (SONATA-DIGEST.md §9)
are tolerated here, never by bending what the partner sends:

- the product schemas are resolved file by file, ref by ref, so the unreachable broken refs of
  ``ipRoutingProtocolsCommon.yaml`` never load (§9.2);
- ``description: null`` is dropped before compiling (§9.1);
- ``MEFProductConfiguration`` is validated by its ``@type`` here (the API files are not blended with the
  product schemas, §1), so the OpenAPI validator sees it with its discriminator removed.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import mef_sdk_dir
from tests.support.mef import MefApi

SONATA = "sonata-sdk-latest"
FILES = {
    "POQ": "productApi/serviceability/offeringQualification/productOfferingQualificationManagement.api.yaml",
    "POQN": "productApi/serviceability/offeringQualification/productOfferingQualificationNotification.api.yaml",
    "QM": "generated/mcp/quote/quoteManagement.api.yaml",
    "QN": "productApi/quote/quoteNotification.api.yaml",
    "POM": "generated/mcp/order/productOrderManagement.api.yaml",
    "PON": "productApi/order/productOrderNotification.api.yaml",
    "PIM": "generated/mcp/inventory/productInventoryManagement.api.yaml",
    "PC": "generated/mcp/catalog/productCatalog.api.yaml",
    "GAM": "productApi/serviceability/address/geographicAddressManagement.api.yaml",
    "GSM": "generated/mcp/serviceability/site/geographicSiteManagement.api.yaml",
}
IA_SCHEMA = "schema/productSchema/ip/internetAccess/internetAccess.yaml"


def sonata_root() -> Path:
    """The Sonata definitions folder, or skip saying how to provide it."""
    root = mef_sdk_dir() / SONATA
    if not root.is_dir():
        pytest.skip(
            f"MEF Sonata definitions not found at {root} (set INTERLUDE_MEF_SDK to the folder holding {SONATA}/)"
        )
    return root


def _undiscriminated(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _undiscriminated(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_undiscriminated(v) for v in node]
    return node


@cache
def sonata_api(alias: str) -> MefApi:
    """One Sonata definition by its digest alias (POQ, QM, POM, PIM, PC, GAM, GSM, POQN, QN, PON)."""
    path = sonata_root() / FILES[alias]
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return MefApi(_undiscriminated(spec), FILES[alias])


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items() if not (k == "description" and v is None)}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


@cache
def _ia_validator() -> Draft7Validator:
    root = sonata_root()
    main = root / IA_SCHEMA

    def retrieve(uri: str) -> Resource[Any]:
        path = Path(urlsplit(urldefrag(uri)[0]).path)
        if not path.is_file():
            raise LookupError(uri)
        doc = _clean(yaml.safe_load(path.read_text(encoding="utf-8")))
        doc.pop("$id", None)
        return Resource.from_contents(doc, default_specification=DRAFT7)

    schema = _clean(yaml.safe_load(main.read_text(encoding="utf-8")))
    schema.pop("$id", None)
    schema["$id"] = main.as_uri()
    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return Draft7Validator(schema, registry=registry)


def validate_ia_configuration(config: dict[str, Any]) -> None:
    """Assert a W139.1 ``productConfiguration`` matches MEF's Internet Access schema."""
    assert config.get("@type") == "urn:mef:lso:spec:cantata-sonata:internet-access:v1.0.0:all"
    body = copy.deepcopy({k: v for k, v in config.items() if k != "@type"})
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in _ia_validator().iter_errors(body)
    ]
    assert not problems, "productConfiguration:\n" + "\n".join(problems)
