"""The Settings models of the forge_b2mml components (one per component, shared parts nested)."""

from __future__ import annotations

from typing import Literal, Self

from forge_core import Settings
from pydantic import Field, model_validator

__all__ = ["B2mmlParams", "DropFolderParams", "ExporterParams", "HttpInboxParams", "TopicInboxParams", "Topics"]


class Topics(Settings):
    """Where the plant messages of imported documents go."""

    production_request: str = Field("b2mml/production_request", description="b2mml.production_request messages")
    routing: str = Field("b2mml/routing", description="b2mml.routing messages")
    material_definition: str = Field("b2mml/material_definition", description="b2mml.material_definition messages")
    material_lot: str = Field("b2mml/material_lot", description="b2mml.material_lot messages")
    request_action: str = Field("b2mml/request_action", description="b2mml.request_action messages (what a Change, "
                                "Cancel, Get or Sync document asks of a request)")
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
    """``b2mml.http_inbox``: ``POST /b2mml/<kind>`` with ``Content-Type: application/xml``, served on the
    runtime's HTTP server (host and port: ``runtime.http`` in the manifest)."""

    path: str = Field("/b2mml", pattern=r"^/[A-Za-z0-9/_-]*[A-Za-z0-9_-]$",
                      description="URL prefix on the runtime's HTTP server; kinds are appended")


class TopicInboxParams(B2mmlParams):
    """``b2mml.topic_inbox``: ``b2mml.document`` messages (the XML as a string field) on a topic."""

    topic: str = Field("erp-production-schedule", description="where the ERP's documents arrive")
    reply_topic: str | None = Field("erp-acknowledgement", description="where Acknowledge<Noun> documents go "
                                    "back as b2mml.document (null: only the b2mml.acknowledgement message)")


class ExporterParams(Settings):
    """``b2mml.exporter``: completed orders → performance documents, resent until acknowledged."""

    version: Literal["V0600", "V0701"] = Field("V0600", description="B2MML release of the exports")
    completion_topic: str = Field("orders/completed", description="where b2mml.order_completed messages arrive")
    destination: Literal["topic", "directory", "http"] = Field("topic", description="where exports go")
    topic: str = Field("work-order-completed", description="export topic (destination topic): b2mml.document")
    directory: str = Field("outbox", description="export directory (destination directory; relative: to the "
                                                 "plant directory); files appear atomically")
    url: str | None = Field(None, description="the ERP's endpoint (destination http): each document is POSTed "
                                              "as application/xml; `${env:...}` allowed")
    http_timeout: float = Field(10.0, gt=0, description="seconds one POST to the ERP may take (destination http)")
    state_topic: str = Field("b2mml/request_state", description="b2mml.request_state in: answered with Show<Noun> "
                             "(Get) or Respond<Noun> (Change, Cancel) to the same destination")
    verb: Literal["none", "Process"] = Field("Process", description="wrap the noun in Process<Noun> (the ERP "
                                             "answers with Acknowledge<Noun>) or send the bare noun")
    require_ack: bool = Field(True, description="resend until the ERP acknowledges (false: delivered is done)")
    acknowledgement_topic: str = Field("b2mml/acknowledgement", description="where the inboxes publish the "
                                       "ERP's acknowledgements (b2mml.acknowledgement, direction in)")
    resend: float = Field(1.0, gt=0, description="seconds between two looks for exports due for (re)sending (a "
                          "look asks the database only once the earliest known export is due)")
    rescan: float | None = Field(60.0, gt=0, description="seconds between two reads of when the ledger's next "
                                 "export is due, for exports another process stored in the same database (this "
                                 "exporter's own are known at once); null: only at start and after a send")
    initial_backoff: float = Field(30.0, gt=0, description="first wait for an acknowledgement, seconds; doubles "
                                   "per attempt (RetryPolicy backoff)")
    max_backoff: float = Field(900.0, gt=0, description="longest wait between two sends, seconds")
    sender: str = Field("forge", min_length=1, description="ApplicationArea/Sender/LogicalID of Process<Noun>")

    @model_validator(mode="after")
    def _url_for_http(self) -> Self:
        if self.destination == "http" and not self.url:
            raise ValueError("destination http needs url (the ERP's endpoint, e.g. https://erp.example/b2mml)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        return self
