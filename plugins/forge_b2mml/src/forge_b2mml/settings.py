"""The Settings models of the forge_b2mml components (one per component, shared parts nested)."""

from __future__ import annotations

from typing import Literal

from forge_core import Settings
from pydantic import Field

__all__ = ["B2mmlParams", "DropFolderParams", "ExporterParams", "HttpInboxParams", "TopicInboxParams", "Topics"]


class Topics(Settings):
    """Where the plant messages of imported documents go."""

    production_request: str = Field("b2mml/production_request", description="b2mml.production_request messages")
    routing: str = Field("b2mml/routing", description="b2mml.routing messages")
    material_definition: str = Field("b2mml/material_definition", description="b2mml.material_definition messages")
    material_lot: str = Field("b2mml/material_lot", description="b2mml.material_lot messages")
    acknowledgement: str = Field("b2mml/acknowledgement",
                                 description="b2mml.acknowledgement: ours (direction out) and the ERP's (in)")


class B2mmlParams(Settings):
    """What every B2MML inbox shares."""

    max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="larger documents are refused before parsing")
    backend: Literal["lxml", "xmlschema"] = Field(
        "lxml", description="XSD validator of the fast path (an invalid document is always re-checked with "
                            "xmlschema to list every error)")
    sender: str = Field("forge", min_length=1, description="ApplicationArea/Sender/LogicalID of our acknowledgements")
    topics: Topics = Field(default_factory=Topics, description="topics of the plant messages")


class DropFolderParams(B2mmlParams):
    """``b2mml.drop_folder``: a watched directory."""

    path: str = Field(description="the inbox directory (relative: to the plant directory); processing/, "
                                  "processed/, rejected/ and acks/ are created inside")
    pattern: str = Field("*.xml", description="file names picked up (glob)")
    poll_interval: float = Field(1.0, gt=0, description="seconds between two looks at the directory")
    min_age: float = Field(0.0, ge=0, description="seconds a file must be unmodified before it is taken (for "
                                                  "writers that do not rename into place)")


class HttpInboxParams(B2mmlParams):
    """``b2mml.http_inbox``: ``POST /b2mml/<kind>`` with ``Content-Type: application/xml``."""

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8095, ge=0, le=65535, description="TCP port (0: any free port, see health())")
    path: str = Field("/b2mml", pattern=r"^/[A-Za-z0-9/_-]*$", description="URL prefix; kinds are appended")


class TopicInboxParams(B2mmlParams):
    """``b2mml.topic_inbox``: ``b2mml.document`` messages (the XML as a string field) on a topic."""

    topic: str = Field("erp-production-schedule", description="where the ERP's documents arrive")
    reply_topic: str | None = Field("erp-acknowledgement", description="where Acknowledge<Noun> documents go "
                                    "back as b2mml.document (null: only the b2mml.acknowledgement message)")


class ExporterParams(Settings):
    """``b2mml.exporter``: completed orders → performance documents, resent until acknowledged."""

    version: Literal["V0600", "V0701"] = Field("V0600", description="B2MML release of the exports")
    completion_topic: str = Field("orders/completed", description="where b2mml.order_completed messages arrive")
    destination: Literal["topic", "directory"] = Field("topic", description="where exports go")
    topic: str = Field("work-order-completed", description="export topic (destination topic): b2mml.document")
    directory: str = Field("outbox", description="export directory (destination directory; relative: to the "
                                                 "plant directory); files appear atomically")
    verb: Literal["none", "Process"] = Field("Process", description="wrap the noun in Process<Noun> (the ERP "
                                             "answers with Acknowledge<Noun>) or send the bare noun")
    require_ack: bool = Field(True, description="resend until the ERP acknowledges (false: delivered is done)")
    acknowledgement_topic: str = Field("b2mml/acknowledgement", description="where the inboxes publish the "
                                       "ERP's acknowledgements (b2mml.acknowledgement, direction in)")
    resend: float = Field(1.0, gt=0, description="seconds between two looks for exports due for (re)sending")
    initial_backoff: float = Field(30.0, gt=0, description="first wait for an acknowledgement, seconds; doubles "
                                   "per attempt (RetryPolicy backoff)")
    max_backoff: float = Field(900.0, gt=0, description="longest wait between two sends, seconds")
    sender: str = Field("forge", min_length=1, description="ApplicationArea/Sender/LogicalID of Process<Noun>")
