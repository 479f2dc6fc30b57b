"""Which nodes a source monitors: given node ids (checked to exist) and variables found by browsing.

``nsu=<uri>;...`` node ids name their namespace by URI; they are resolved against the server's
namespace array at every connect, so a server that renumbers its namespaces after a restart is
still read right. A node that does not exist, or is not a variable, is a :class:`NodeError`
naming the node id, the endpoint and the server's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from asyncua import Client, ua
from asyncua.common.node import Node

from forge_opcua.client.convert import Tag, make_node_id
from forge_opcua.settings import BrowseSpec, NodeSpec

__all__ = ["NodeError", "resolve_node_id", "resolve_tags"]


_HAS_PROPERTY = make_node_id(ua.ObjectIds.HasProperty, 0)


class NodeError(Exception):
    """A configured node is unknown, not a variable, or a browse root cannot be found."""


def resolve_node_id(text: str, namespaces: Sequence[str]) -> ua.NodeId:
    """``text`` as a NodeId of this server; ``nsu=`` becomes the index of that URI in ``namespaces``."""
    parsed = ua.NodeId.from_string(text)
    uri = getattr(parsed, "NamespaceUri", None)
    if not uri:
        return make_node_id(parsed.Identifier, parsed.NamespaceIndex, parsed.NodeIdType)
    try:
        index = list(namespaces).index(uri)
    except ValueError:
        raise NodeError(f"node {text!r}: the server has no namespace {uri!r} (it has {list(namespaces)})") from None
    return make_node_id(parsed.Identifier, index, parsed.NodeIdType)


async def resolve_tags(client: Client, nodes: Sequence[NodeSpec], browse: Sequence[BrowseSpec]) -> list[Tag]:
    """Every tag to monitor, in configuration order, with client handles 1..n; raises NodeError."""
    namespaces = await client.get_namespace_array()
    found: list[tuple[ua.NodeId, str]] = []
    given = [resolve_node_id(spec.node_id, namespaces) for spec in nodes]
    if given:
        classes = await client.uaclient.read_attributes(given, ua.AttributeIds.NodeClass)
        names = await client.uaclient.read_attributes(given, ua.AttributeIds.BrowseName)
        for spec, node_id, node_class, name in zip(nodes, given, classes, names, strict=True):
            status = node_class.StatusCode
            if status is not None and not status.is_good():
                raise NodeError(f"node {spec.node_id!r} does not exist on the server ({status.name})")
            kind = node_class.Value.Value if node_class.Value is not None else None
            if kind != ua.NodeClass.Variable:
                raise NodeError(f"node {spec.node_id!r} is a {ua.NodeClass(kind).name if kind else 'node'}, not a "
                                "variable: give a variable, or browse it")
            browse_name = name.Value.Value.Name if name.Value is not None else str(node_id.Identifier)
            found.append((node_id, spec.tag or browse_name))
    for root_spec in browse:
        root = await _browse_root(client, root_spec, namespaces)
        found.extend(await _variables_below(root, root_spec.max_depth))
    seen: set[ua.NodeId] = set()
    owners: dict[str, ua.NodeId] = {}
    tags: list[Tag] = []
    for node_id, tag in found:
        if node_id in seen:  # a node given and browsed too is monitored once
            continue
        if tag in owners:  # two nodes on one topic and key: their messages could not be told apart
            raise NodeError(f"tag {tag!r} names two nodes ({owners[tag].to_string()} and {node_id.to_string()}); "
                            "give them distinct tags (nodes: [{node_id: ..., tag: ...}])")
        seen.add(node_id)
        owners[tag] = node_id
        tags.append(Tag(node_id, tag, len(tags) + 1))
    return tags


async def _browse_root(client: Client, spec: BrowseSpec, namespaces: Sequence[str]) -> Node:
    if spec.root is not None:
        node = client.get_node(resolve_node_id(spec.root, namespaces))
        try:
            await node.read_browse_name()
        except ua.UaStatusCodeError as exc:
            raise NodeError(f"browse root {spec.root!r} does not exist on the server ({type(exc).__name__})") from None
        return node
    node = client.nodes.objects
    walked = "Objects"
    for name in (part for part in (spec.path or "").split("/") if part):
        children = {d.BrowseName.Name: d.NodeId for d in await _children(node)}
        if name not in children:
            raise NodeError(f"browse path {spec.path!r}: {walked} has no child {name!r} "
                            f"(it has {sorted(children) or 'none'})")
        node, walked = client.get_node(children[name]), f"{walked}/{name}"
    return node


async def _children(node: Node) -> list[ua.ReferenceDescription]:
    """Objects and variables below ``node`` through hierarchical references, in one Browse."""
    mask = cast(ua.NodeClass, ua.NodeClass.Object | ua.NodeClass.Variable)  # a bit mask, not one class
    return await node.get_children_descriptions(refs=ua.ObjectIds.HierarchicalReferences, nodeclassmask=mask)


async def _variables_below(root: Node, depth: int, prefix: str = "") -> list[tuple[ua.NodeId, str]]:
    """Variables below ``root`` (properties left out), depth first, named by their path below it."""
    found: list[tuple[ua.NodeId, str]] = []
    for child in await _children(root):
        if child.ReferenceTypeId == _HAS_PROPERTY:
            continue
        node_id = make_node_id(child.NodeId.Identifier, child.NodeId.NamespaceIndex, child.NodeId.NodeIdType)
        path = f"{prefix}{child.BrowseName.Name}"
        if child.NodeClass == ua.NodeClass.Variable:
            found.append((node_id, path))
        elif depth > 1:
            found.extend(await _variables_below(Node(root.session, node_id), depth - 1, f"{path}/"))
    return found
