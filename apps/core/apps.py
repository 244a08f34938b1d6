from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from celery.signals import task_failure

        from apps.core.metrics import task_failure_count

        # Counted in whichever process runs the task (a Celery worker), read by the web's /metrics.
        task_failure.connect(task_failure_count, weak=False, dispatch_uid="shopdesk-task-failure-metric")
