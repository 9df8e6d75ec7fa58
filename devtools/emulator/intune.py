"""The emulator's Intune device configuration endpoints (beta): imported-PFX profiles, their ``assign``
action and assignments, scope tags, what devices report about a profile, and certificate connectors.

Bodies are checked against the SDK-derived schema (``schema``): unknown properties, navigation
properties, a wrong ``@odata.type`` and unknown enum members are refused with Graph's 400.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from devtools.emulator import schema
from devtools.emulator.parsing import ODataError

if TYPE_CHECKING:
    from devtools.emulator.state import State

CONFIGS = "/beta/deviceManagement/deviceConfigurations"
TAGS = "/beta/deviceManagement/roleScopeTags"
CONNECTORS = "/beta/deviceManagement/certificateConnectorDetails"
NDES = "/beta/deviceManagement/ndesConnectors"
_ENTITY = re.compile(
    r"^/beta/deviceManagement/deviceConfigurations/([^/]+)"
    r"(?:/(assign|assignments|deviceStatuses|userStatuses|deviceStatusOverview|microsoft\.graph\.(\w+)/managedDeviceCertificateStates))?$"
)
RULES = {
    "deviceManagementApplicabilityRuleOsEdition": "deviceManagementApplicabilityRuleOsEdition",
    "deviceManagementApplicabilityRuleOsVersion": "deviceManagementApplicabilityRuleOsVersion",
}


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class IntuneRoutes:
    """Mixed into the request handler; every method runs with the handler's parsed request."""

    query: dict[str, str]

    @property
    def state(self) -> State:
        raise NotImplementedError

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        raise NotImplementedError

    def _page(
        self, path: str, items: list[dict[str, Any]], *, version: str = "", type_name: str = ""
    ) -> None:
        raise NotImplementedError

    def _json_body(self) -> dict[str, Any]:
        raise NotImplementedError

    def _spend_write(self) -> None:
        raise NotImplementedError

    def intune(self, method: str, path: str) -> bool:
        """Serve ``path`` if it is one of these endpoints; False if it is not."""
        if path == CONFIGS:
            if method == "GET":
                with self.state.lock:
                    items = list(self.state.configurations.values())
                self._page(path, items, version="beta", type_name="deviceConfiguration")
            elif method == "POST":
                self._spend_write()
                self._create_configuration()
            else:
                raise ODataError(405, "MethodNotAllowed", f"{method} is not supported on the collection.")
            return True
        if path == TAGS:
            self._tags(method)
            return True
        if path in (CONNECTORS, NDES) and method == "GET":
            with self.state.lock:
                items = list(
                    self.state.connector_details if path == CONNECTORS else self.state.ndes_connectors
                )
            name = "certificateConnectorDetails" if path == CONNECTORS else "ndesConnector"
            self._page(path, items, version="beta", type_name=name)
            return True
        match = _ENTITY.match(path)
        if match is None:
            return False
        config_id, sub, cast = match.groups()
        with self.state.lock:
            config = self.state.configurations.get(config_id)
        if config is None:
            raise ODataError(404, "ResourceNotFound", f"deviceConfiguration '{config_id}' was not found.")
        if sub is None:
            self._configuration(method, config)
        elif sub == "assign" and method == "POST":
            self._spend_write()
            self._assign(config)
        elif method != "GET":
            raise ODataError(405, "MethodNotAllowed", f"{method} is not supported here.")
        elif sub == "assignments":
            with self.state.lock:
                items = list(self.state.assignments.get(config_id, []))
            self._page(path, items, version="beta", type_name="deviceConfigurationAssignment")
        elif sub == "deviceStatuses":
            with self.state.lock:
                items = list(self.state.device_statuses.get(config_id, []))
            self._page(path, items, version="beta", type_name="deviceConfigurationDeviceStatus")
        elif sub == "userStatuses":
            with self.state.lock:
                items = list(self.state.user_statuses.get(config_id, []))
            self._page(path, items, version="beta", type_name="deviceConfigurationUserStatus")
        elif sub == "deviceStatusOverview":
            chosen = schema.check_select("beta", "deviceConfigurationDeviceOverview", self.query)
            self._send(
                200,
                schema.project("beta", "deviceConfigurationDeviceOverview", self._overview(config), chosen),
            )
        else:
            if config["@odata.type"] != f"#microsoft.graph.{cast}":
                raise ODataError(
                    400,
                    "BadRequest",
                    f"The type cast 'microsoft.graph.{cast}' does not match the entity's type.",
                )
            with self.state.lock:
                items = list(self.state.certificate_states.get(config_id, []))
            self._page(path, items, version="beta", type_name="managedDeviceCertificateState")
        return True

    # -- deviceConfigurations

    def _validated_configuration(self, body: dict[str, Any], type_name: str) -> None:
        schema.check_body("beta", type_name, body)
        for rule_name in RULES:
            rule = body.get(rule_name)
            if rule is None:
                continue
            if not isinstance(rule, dict):
                raise ODataError(400, "BadRequest", f"'{rule_name}' must be an object.")
            schema.check_body("beta", rule_name, rule)
            if "@odata.type" in rule:
                schema.resolve_type(rule["@odata.type"], [rule_name])
            for edition in rule.get("osEditionTypes") or []:
                schema.check_enum("windows10EditionType", edition)
        for item in body.get("silentCertificateAccessDetails") or []:
            if not isinstance(item, dict):
                raise ODataError(400, "BadRequest", "'silentCertificateAccessDetails' holds objects.")
            schema.check_body("beta", "androidDeviceOwnerSilentCertificateAccess", item)
        tags = body.get("roleScopeTagIds")
        if tags is not None:
            with self.state.lock:
                unknown = [t for t in tags if str(t) not in self.state.scope_tags]
            if unknown:
                raise ODataError(
                    400, "BadRequest", f"Scope tag(s) {', '.join(map(str, unknown))} do not exist."
                )

    def _create_configuration(self) -> None:
        body = self._json_body()
        type_name = schema.resolve_type(body.get("@odata.type"), schema.PROFILE_TYPES)
        if "id" in body:
            raise ODataError(400, "BadRequest", "The property 'id' is read-only and cannot be set.")
        self._validated_configuration(body, type_name)
        if not body.get("displayName"):
            raise ODataError(400, "BadRequest", "displayName is required.")
        stamp = now()
        record = {
            "@odata.type": f"#microsoft.graph.{type_name}",
            "id": str(uuid.uuid4()),
            "roleScopeTagIds": ["0"],
            "supportsScopeTags": True,
            "version": 1,
            "createdDateTime": stamp,
            "lastModifiedDateTime": stamp,
            **{k: v for k, v in body.items() if not k.startswith("@")},
        }
        with self.state.lock:
            self.state.configurations[record["id"]] = record
            self.state.stats.profile_creates += 1
            delay = self.state.config.create_answer_delay
        if delay:
            time.sleep(delay)
        self._send(201, record, {"Location": f"{CONFIGS}/{record['id']}"})

    def _configuration(self, method: str, config: dict[str, Any]) -> None:
        type_name = config["@odata.type"].removeprefix("#microsoft.graph.")
        if method == "GET":
            chosen = schema.check_select("beta", type_name, self.query)
            self._send(200, schema.project("beta", type_name, config, chosen))
            return
        if method not in {"PATCH", "DELETE"}:
            raise ODataError(405, "MethodNotAllowed", f"{method} is not supported on an entity.")
        self._spend_write()
        if method == "DELETE":
            with self.state.lock:
                self.state.configurations.pop(config["id"], None)
                self.state.assignments.pop(config["id"], None)
            self._send(204)
            return
        body = self._json_body()
        if "@odata.type" in body:
            # A PATCH may name the type, but only the entity's own.
            schema.resolve_type(body["@odata.type"], [type_name])
        body.pop("id", None)
        self._validated_configuration(body, type_name)
        with self.state.lock:
            config.update({k: v for k, v in body.items() if not k.startswith("@")})
            config["version"] = int(config.get("version", 1)) + 1
            config["lastModifiedDateTime"] = now()
            self.state.stats.profile_patches += 1
        self._send(204)

    def _assign(self, config: dict[str, Any]) -> None:
        body = self._json_body()
        if set(body) - {"assignments"}:
            extra = sorted(set(body) - {"assignments"})[0]
            raise ODataError(
                400,
                "BadRequest",
                f"The parameter '{extra}' in the request payload is not a valid parameter for the operation 'assign'.",
            )
        stored = []
        for item in body.get("assignments") or []:
            if not isinstance(item, dict) or not isinstance(item.get("target"), dict):
                raise ODataError(400, "BadRequest", "Each assignment needs a target.")
            schema.check_body("beta", "deviceConfigurationAssignment", item)
            if "@odata.type" in item:
                schema.resolve_type(item["@odata.type"], ["deviceConfigurationAssignment"])
            target = item["target"]
            target_type = schema.resolve_type(target.get("@odata.type"), schema.ASSIGNMENT_TARGETS)
            schema.check_body("beta", target_type, target)
            if "groupId" in schema.properties("beta", target_type):
                with self.state.lock:
                    known = str(target.get("groupId")) in self.state.groups
                if not known:
                    raise ODataError(400, "BadRequest", f"Group '{target.get('groupId')}' was not found.")
            key = target.get("groupId") or target_type
            stored.append(
                {
                    "id": f"{config['id']}_{key}",
                    "source": "direct",
                    "sourceId": config["id"],
                    "intent": "apply",
                    "target": target,
                }
            )
        with self.state.lock:
            self.state.assignments[config["id"]] = stored
            self.state.stats.assigns += 1
        self._send(200, {"value": stored})

    def _overview(self, config: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            statuses = [s.get("status") for s in self.state.device_statuses.get(config["id"], [])]
        return {
            "id": f"{config['id']}_overview",
            "pendingCount": statuses.count("unknown"),
            "notApplicableCount": statuses.count("notApplicable"),
            "notApplicablePlatformCount": 0,
            "successCount": statuses.count("compliant") + statuses.count("remediated"),
            "errorCount": statuses.count("error") + statuses.count("nonCompliant"),
            "failedCount": 0,
            "conflictCount": statuses.count("conflict"),
            "lastUpdateDateTime": now(),
            "configurationVersion": config.get("version", 1),
        }

    # -- control (not part of Graph): what devices report, and the connectors Intune knows

    def intune_control(self, method: str, path: str) -> bool:
        if method != "POST" or path not in {"/_emulator/profile-reports", "/_emulator/connectors"}:
            return False
        body = self._json_body()
        if path == "/_emulator/connectors":
            for key, type_name in (
                ("certificateConnectorDetails", "certificateConnectorDetails"),
                ("ndesConnectors", "ndesConnector"),
            ):
                items = body.get(key) or []
                for item in items:
                    schema.check_body("beta", type_name, item, allow_server_owned=True, enums={})
                with self.state.lock:
                    if key == "ndesConnectors":
                        self.state.ndes_connectors = list(items)
                    else:
                        self.state.connector_details = list(items)
            self._send(204)
            return True
        config_id = str(body.get("configurationId") or "")
        with self.state.lock:
            if config_id not in self.state.configurations:
                raise ODataError(404, "NotFound", f"No configuration {config_id}.")
        parts = (
            ("deviceStatuses", "deviceConfigurationDeviceStatus", self.state.device_statuses),
            ("userStatuses", "deviceConfigurationUserStatus", self.state.user_statuses),
            ("certificateStates", "managedDeviceCertificateState", self.state.certificate_states),
        )
        for key, type_name, target in parts:
            if key not in body:
                continue
            items = [dict(item) for item in body[key]]
            for n, item in enumerate(items):
                schema.check_body("beta", type_name, item, allow_server_owned=True, enums={})
                item.setdefault("id", f"{config_id}_{key}_{n}")
            with self.state.lock:
                target[config_id] = items
        self._send(204)
        return True

    # -- roleScopeTags

    def _tags(self, method: str) -> None:
        if method == "GET":
            with self.state.lock:
                items = list(self.state.scope_tags.values())
            self._page(TAGS, items, version="beta", type_name="roleScopeTag")
            return
        if method != "POST":
            raise ODataError(405, "MethodNotAllowed", f"{method} is not supported on the collection.")
        self._spend_write()
        body = self._json_body()
        if "@odata.type" in body:
            schema.resolve_type(body["@odata.type"], ["roleScopeTag"])
        schema.check_body("beta", "roleScopeTag", body)
        name = str(body.get("displayName") or "")
        with self.state.lock:
            if not name or any(
                t["displayName"].lower() == name.lower() for t in self.state.scope_tags.values()
            ):
                raise ODataError(
                    400, "BadRequest", f"A scope tag named '{name}' exists already or the name is empty."
                )
            tag_id = str(max(int(k) for k in self.state.scope_tags) + 1)
            tag = {
                "id": tag_id,
                "displayName": name,
                "description": body.get("description") or "",
                "isBuiltIn": False,
            }
            self.state.scope_tags[tag_id] = tag
        self._send(201, tag)
