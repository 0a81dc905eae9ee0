"""The job workflows this version can run, by ``kind`` (see ``config/workflows.py``)."""

from __future__ import annotations

from pipeline.feedback_digest import DigestParams, feedback_digest
from pipeline.ingest import IngestParams, ingest
from pipeline.jobs import JobKind
from pipeline.sla_sweep import SlaSweepParams, sla_sweep

JOB_KINDS: dict[str, JobKind] = {
    "sla_sweep": JobKind(SlaSweepParams, sla_sweep),
    "ingest": JobKind(IngestParams, ingest),
    "feedback_digest": JobKind(DigestParams, feedback_digest),
}
