from __future__ import annotations

from apps.core.tasks import project_task
from apps.knowledge import services


@project_task(name="knowledge.ingest_document", idempotent=True, soft_time_limit=20 * 60, time_limit=25 * 60)
def ingest_document(self, job_id: int) -> None:
    services.document_ingest(job_id=job_id)


@project_task(name="knowledge.requeue_stale_jobs", idempotent=True, soft_time_limit=60, time_limit=90)
def requeue_stale_jobs(self) -> None:
    services.ingestion_jobs_requeue_stale()
