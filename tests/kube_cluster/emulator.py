"""kmock's KubernetesEmulator, extended into an API server that ``kubectl`` and the official client accept.

kmock serves HTTP, parses each request into resource / namespace / name / action, and answers API
discovery; this subclass keeps the objects of the resources in ``resources.py`` in an ``ObjectStore``
and adds what kmock's emulator lacks for this use: metadata a real server fills in, Job defaulting,
label and field selectors, list kinds, watches from a resourceVersion with timeoutSeconds, delete
propagation to a Job's pods, merge and JSON patches, pod logs, server-side printing (Tables) for
``kubectl get``, proper Status errors, and version 1.32.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, rendering

from tests.kube_cluster.resources import BY_PLURAL, RESOURCES, VERBS, Resource
from tests.kube_cluster.selectors import field_matcher, label_matcher
from tests.kube_cluster.store import ApiError, ObjectStore, Watcher
from tests.kube_cluster.tables import table_for

#: (namespace, pod name) -> the pod's log text, or None when it has none (yet).
LogSource = Callable[[str, str], "str | None"]
_DEFAULT_WATCH_SECONDS = 1800.0
_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)$")


class _Target(NamedTuple):
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    store: ObjectStore = attrs.field(factory=ObjectStore)
    log_source: LogSource | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource in RESOURCES:
            key = (
                f"{resource.group}/{resource.version}/{resource.plural}"
                if resource.group
                else f"v1/{resource.plural}"
            )
            self.resources[key] = kmock.ResourceInfo(
                kind=resource.kind,
                namespaced=resource.namespaced,
                singular=resource.kind.lower(),
                verbs=set(VERBS),
                shortnames=set(resource.short_names),
                subresources=set(resource.subresources),
            )
        self.store.create(
            "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
        )

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        return {
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-12-11T00:00:00Z",
            "goVersion": "go1.23.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        """APIResourceList of one group version (kmock's says groupVersion "/v1" for the core group)."""
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version
        served = [r for r in RESOURCES if r.group == group and r.version == version]
        if not served:
            raise kmock.KubernetesResourceNotFoundError()
        resources: list[dict[str, Any]] = []
        for resource in served:
            common = {"singularName": "", "namespaced": resource.namespaced, "kind": resource.kind}
            resources.append(
                {**common, "name": resource.plural, "singularName": resource.kind.lower(),
                 "shortNames": list(resource.short_names), "verbs": list(VERBS)}
            )  # fmt: skip
            for subresource in resource.subresources:
                verbs = ["get"] if subresource == "log" else ["get", "patch", "update"]
                resources.append({**common, "name": f"{resource.plural}/{subresource}", "verbs": verbs})
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        namespace_path = _NAMESPACE_PATH.match(request.url.path)
        try:
            if namespace_path:  # kmock reads /api/v1/namespaces/NAME as a namespace, not an object
                target = _Target(BY_PLURAL["namespaces"], None, namespace_path.group(1), None)
                return await self._serve(request, target)
            if request.url.path.rstrip("/") == "/version":  # the client asks /version/, kubectl /version
                return _json(await self._serve_server_version(request))
            if resource is None or not resource.plural or resource.version is None:
                return await apps.RawHandler._handle(self, request)  # discovery, /version, unknown paths
            known = BY_PLURAL.get(str(resource.plural))
            if known is None or known.group != resource.group:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            namespace = request.namespace if known.namespaced else None
            return await self._serve(request, _Target(known, namespace, request.name, request.subresource))
        except ApiError as error:
            return aiohttp.web.json_response(error.status(), status=error.code)

    # --- one request ----------------------------------------------------------------------------

    async def _serve(self, request: rendering.Request, target: _Target) -> aiohttp.web.StreamResponse:
        method = str(request.method.value).upper() if request.method else "GET"
        resource, namespace, name, subresource = target
        params = dict(request.params)
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(request, resource, namespace, name, params)
        if method == "GET" and name is None:
            return self._list(request, resource, namespace, params)
        if method == "GET" and subresource == "log" and params.get("follow") in ("true", "1"):
            return await self._follow_log(request, resource, namespace, str(name))
        if method == "GET" and subresource == "log":
            return self._log(resource, namespace, str(name))
        if method == "GET":
            return _json(self.store.get(resource.plural, namespace, str(name)))
        if method == "POST" and name is None:
            return _json(self._create(resource, namespace, _body(request)), status=201)
        if method == "PATCH" and name is not None:
            patch = _body(request)
            content_type = request.headers.get("Content-Type", "")
            return _json(
                self.store.replace(
                    resource.plural, namespace, name, lambda obj: _apply_patch(obj, patch, content_type)
                )
            )
        if method == "PUT" and name is not None:
            body = _body(request)
            return _json(
                self.store.replace(
                    resource.plural, namespace, name, lambda obj: _replace(obj, body, subresource)
                )
            )
        if method == "DELETE" and name is not None:
            return _json(self.delete_object(resource, namespace, name, _propagation(request, params)))
        if method == "DELETE":
            matches = label_matcher(params.get("labelSelector"))
            deleted = [
                self.delete_object(
                    resource, namespace, obj["metadata"]["name"], _propagation(request, params)
                )
                for obj in self.store.list(resource.plural, namespace, matches)
            ]
            return _json(_list_body(resource, deleted, self.store.resource_version))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {resource.plural}")

    def _list(
        self, request: rendering.Request, resource: Resource, namespace: str | None, params: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        labels, fields = (
            label_matcher(params.get("labelSelector")),
            field_matcher(params.get("fieldSelector")),
        )
        version = self.store.resource_version
        items = self.store.list(resource.plural, namespace, lambda obj: labels(obj) and fields(obj))
        if (
            "as=Table" in request.headers.get("Accept", "")
            and (table := table_for(resource, items, params)) is not None
        ):
            table["metadata"] = {"resourceVersion": version}
            return _json(table)
        return _json(_list_body(resource, items, version))

    async def _watch(
        self,
        request: rendering.Request,
        resource: Resource,
        namespace: str | None,
        name: str | None,
        params: dict[str, str],
    ) -> aiohttp.web.StreamResponse:
        labels, fields = (
            label_matcher(params.get("labelSelector")),
            field_matcher(params.get("fieldSelector")),
        )
        named = field_matcher(f"metadata.name={name}") if name else (lambda obj: True)
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        watcher = Watcher(
            resource.plural,
            namespace,
            lambda obj: labels(obj) and fields(obj) and named(obj),
            lambda event: _deliver(loop, queue, event),
        )
        stop = self.store.watch(watcher, params.get("resourceVersion"))
        deadline = loop.time() + float(params.get("timeoutSeconds") or _DEFAULT_WATCH_SECONDS)
        try:
            while (remaining := deadline - loop.time()) > 0:
                if raw.transport is None or raw.transport.is_closing():
                    break  # the client went away
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=min(remaining, 0.5))
                except TimeoutError:
                    continue
                await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            stop()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _log(self, resource: Resource, namespace: str | None, name: str) -> aiohttp.web.StreamResponse:
        if resource.plural != "pods":
            raise ApiError(404, "NotFound", f"{resource.plural} have no log")
        self.store.get("pods", namespace, name)  # 404 for an unknown pod
        text = self.log_source(str(namespace), name) if self.log_source else None
        if text is None:
            raise ApiError(400, "BadRequest", f'container "run-worker" in pod "{name}" is waiting to start')
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _follow_log(
        self, request: rendering.Request, resource: Resource, namespace: str | None, name: str
    ) -> aiohttp.web.StreamResponse:
        """``follow=true``: the log so far, then what the container writes, until it has terminated."""
        self._log(resource, namespace, name)  # the same refusals: unknown pod, container not started
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(raw)
        sent = 0
        try:
            while raw.transport is not None and not raw.transport.is_closing():
                pod = self.store.find("pods", namespace, name)
                text = (self.log_source(str(namespace), name) if self.log_source else None) or ""
                if len(text) > sent:
                    await response.write(text[sent:].encode())
                    sent = len(text)
                elif pod is None or _terminated(pod):
                    break
                await asyncio.sleep(0.05)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # --- writes with the server's own logic ---------------------------------------------------------

    def _create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if namespace is not None and self.store.find("namespaces", None, namespace) is None:
            # Lenient where a real server says 404: a namespace is created on first use.
            self.store.create(
                "namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        body.setdefault("apiVersion", resource.api_version)
        body.setdefault("kind", resource.kind)
        if resource.plural == "jobs":
            return self._create_job(namespace, body)
        if resource.plural == "pods":
            body.setdefault("status", {"phase": "Pending"})
        return self.store.create(resource.plural, namespace, body)

    def _create_job(self, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Job defaulting as the real server does it: a selector on the Job's uid, labels on its pods."""
        metadata = body.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        uid = metadata["uid"] = str(uuid.uuid4())
        name = metadata.get("name", "")
        spec = body.setdefault("spec", {})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("suspend", False)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("backoffLimit", 6)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
            }
        )
        return self.store.create("jobs", namespace, {**body, "status": {}})

    def delete_object(
        self, resource: Resource, namespace: str | None, name: str, propagation: str
    ) -> dict[str, Any]:
        deleted = self.store.delete(resource.plural, namespace, name)
        if resource.plural == "jobs" and propagation in ("Background", "Foreground"):
            uid = deleted["metadata"]["uid"]
            for pod in self.store.list("pods", namespace):
                owners = pod["metadata"].get("ownerReferences") or ()
                if any(owner.get("uid") == uid for owner in owners):
                    self.store.delete("pods", namespace, pod["metadata"]["name"])
        return deleted


def _deliver(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]
) -> None:
    """Called from any thread: hand the event to the watch's own loop."""
    loop.call_soon_threadsafe(queue.put_nowait, event)


def _json(body: Any, status: int = 200) -> aiohttp.web.StreamResponse:
    return aiohttp.web.json_response(body, status=status)


def _body(request: rendering.Request) -> Any:
    if isinstance(request.data, (dict, list)):
        return request.data
    try:
        return json.loads(request.body or b"{}")
    except ValueError as error:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {error}") from error


def _list_body(resource: Resource, items: list[dict[str, Any]], version: str) -> dict[str, Any]:
    return {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": version},
        "items": items,
    }


def _propagation(request: rendering.Request, params: dict[str, str]) -> str:
    """The propagation policy from the query or the DeleteOptions body; a Job's default is Orphan."""
    policy = params.get("propagationPolicy")
    if policy is None and request.body:
        try:
            policy = json.loads(request.body).get("propagationPolicy")
        except (ValueError, AttributeError):
            policy = None
    return policy or "Orphan"


def _replace(obj: dict[str, Any], body: dict[str, Any], subresource: str | None) -> None:
    if subresource == "status":
        obj["status"] = body.get("status", {})
        return
    metadata = obj["metadata"]
    obj.clear()
    obj.update(body)
    obj["metadata"] = {
        **body.get("metadata", {}),
        **{k: metadata[k] for k in ("uid", "creationTimestamp", "namespace") if k in metadata},
    }


def _apply_patch(obj: dict[str, Any], patch: Any, content_type: str) -> None:
    if "json-patch" in content_type:
        for operation in patch:
            _json_patch(obj, operation)
    else:  # merge patch; a strategic merge patch is a merge patch for what these tests send
        _merge(obj, patch)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _json_patch(obj: dict[str, Any], operation: dict[str, Any]) -> None:
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].lstrip("/").split("/")
    ]
    target: Any = obj
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    op = operation["op"]
    if op in ("add", "replace"):
        if isinstance(target, list):
            target.insert(
                len(target) if last == "-" else int(last), operation["value"]
            ) if op == "add" else target.__setitem__(int(last), operation["value"])
        else:
            target[last] = operation["value"]
    elif op == "remove":
        del target[int(last) if isinstance(target, list) else last]
    else:
        raise ApiError(422, "Invalid", f"JSON patch operation {op!r} is not supported here")


def _terminated(pod: dict[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return bool(statuses) and all("terminated" in (status.get("state") or {}) for status in statuses)
