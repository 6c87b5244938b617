"""Loading MEF-style definitions from a folder: indexing by server path, lazy parsing, defects, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.conformance.definitions import Definitions
from interlude.errors import ConfigError

INVENTORY = """\
openapi: 3.0.1
info: {title: Service Inventory, version: 2.0.2}
servers:
  - url: 'https://{serverBase}/mefApi/interlude/serviceInventory/v2/'
paths:
  /service:
    get:
      operationId: serviceFind
      description: 'The Seller MUST return 200 with an empty list when nothing matches (R31, O3).'
      parameters:
        - {name: state, in: query, schema: {$ref: '#/components/schemas/ServiceStateType'}}
      responses:
        '200':
          description: OK
          headers:
            X-Total-Count: {schema: {type: integer}}
          content:
            application/json;charset=utf-8:
              schema: {type: array, items: {$ref: '#/components/schemas/Service'}}
  /service/{id}:
    get:
      responses:
        '200':
          description: OK
          content:
            application/json;charset=utf-8:
              schema: {$ref: '#/components/schemas/Service'}
  /hub:
    post:
      responses: {'201': {description: created}}
components:
  schemas:
    ServiceStateType:
      description: The state of the service.
      type: string
      enum: [active, inactive]
    Service:
      type: object
      required: [id]
      properties:
        id: {type: string}
        state: {$ref: '#/components/schemas/ServiceStateType'}
"""

FOLDED = """\
openapi: 3.0.1
info: {title: POQ Notification, version: 8.0.0}
servers:
  - url: >-
      https://{serverBase}/mefApi/sonata/productOfferingQualificationNotification/v8/
paths: {}
"""

SFT = """\
openapi: 3.0.1
info: {title: SFT, version: 3.0.0}
servers:
  - url: 'https://{serverBase}/mefApi/interlude/serviceFunctionTesting/v3/'
paths:
  /testJob:
    get:
      responses:
        '200':
          description: OK
          content:
            application/json;charset=utf-8:
              schema: {type: array, items: {$ref: 'parts.yaml#/definitions/TestJob_Find'}}
components:
  schemas:
    TestJob_Find:
      type: object
      required: [id, idRelatedContact]
      properties: {id: {type: string}}
"""

PARTS = """\
definitions:
  TestJob_Find:
    type: object
    required: [id]
    properties: {id: {type: string}, state: {type: string, enum: [acknowledged, completed]}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "interlude-sdk-latest" / "sft").mkdir(parents=True)
    (tmp_path / "interlude-sdk-latest" / "inventory.api.yaml").write_text(INVENTORY, encoding="utf-8")
    (tmp_path / "interlude-sdk-latest" / "poq.api.yaml").write_text(FOLDED, encoding="utf-8")
    sft = tmp_path / "interlude-sdk-latest" / "sft"
    (sft / "serviceFunctionTest.api.yaml").write_text(SFT, encoding="utf-8")
    (sft / "parts.yaml").write_text(PARTS, encoding="utf-8")
    (tmp_path / "old-grace").mkdir()
    older = INVENTORY.replace("title: Service Inventory", "title: Older Inventory")
    (tmp_path / "old-grace" / "inventory.api.yaml").write_text(older, encoding="utf-8")
    return tmp_path


def test_files_are_indexed_by_their_server_path_newest_release_first(folder: Path) -> None:
    definitions = Definitions.load(folder)
    assert set(definitions.by_base) == {
        "/mefApi/interlude/serviceInventory/v2",
        "/mefApi/sonata/productOfferingQualificationNotification/v8",
        "/mefApi/interlude/serviceFunctionTesting/v3",
    }
    inventory = definitions.by_base["/mefApi/interlude/serviceInventory/v2"]
    assert "spec" not in vars(inventory), "indexing parses no file"
    assert inventory.title == "Service Inventory 2.0.2", "the latest release wins the base path"


def test_paths_map_to_templates_and_operations(folder: Path) -> None:
    definitions = Definitions.load(folder)
    found = definitions.find("/mefApi/interlude/serviceInventory/v2/service/ovc-1")
    assert found is not None and found[1] == "/service/{id}"
    assert definitions.find("/mefApi/interlude/serviceInventory/v2/hub")[1] == "/hub"  # type: ignore[index]
    assert definitions.find("/mefApi/other/v1/service") is None
    inventory = found[0]
    assert inventory.collections() == ["/service"]
    assert inventory.item_template("/service") == "/service/{id}"
    assert inventory.query_parameters("/service", "get")["state"]["enum"] == ["active", "inactive"]
    assert inventory.requirement_refs("/service", "get") == [
        "interlude-sdk-latest/inventory.api.yaml serviceFind", "O3", "R31"
    ]
    assert inventory.declares("/service", "get", 200) and not inventory.declares("/service", "get", 500)


def test_a_violation_names_the_schema_location_and_the_definitions_text(folder: Path) -> None:
    inventory = Definitions.load(folder).by_base["/mefApi/interlude/serviceInventory/v2"]
    schema = inventory.response_schema("/service/{id}", "get", 200)
    assert schema is not None
    (violation,) = inventory.validate(schema, {"id": "x", "state": "bogus"}, "body")
    assert violation.instance_path == "state"
    assert violation.schema_path == "#/components/schemas/ServiceStateType/enum"
    assert violation.definition_text.startswith("The state of the service.")
    assert "active" in violation.definition_text
    assert inventory.validate(schema, {"id": "x", "state": "active"}, "body") == []


def test_known_defects_are_patched_and_listed_and_sibling_files_inlined(folder: Path) -> None:
    definitions = Definitions.load(folder)
    sft = definitions.by_base["/mefApi/interlude/serviceFunctionTesting/v3"]
    assert sft.spec["components"]["schemas"]["TestJob_Find"]["required"] == ["id"]
    (defect,) = definitions.defects
    assert "idRelatedContact" in defect.where and defect.file.endswith("serviceFunctionTest.api.yaml")
    schema = sft.response_schema("/testJob", "get", 200)
    assert schema is not None
    assert sft.validate(schema, [{"id": "1", "state": "completed"}], "body") == []
    assert len(sft.validate(schema, [{"id": "1", "state": "nope"}], "body")) == 1


def test_a_folder_without_definitions_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no MEF API definitions"):
        Definitions.load(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        Definitions.load(tmp_path / "missing")
