from celery import shared_task

from effects.models import Effect
from effects.services import effect_enqueue, effect_perform, effects_requeue_lost


@shared_task(name="effects.perform")
def perform(effect_id: int, tenant_id: int) -> str:
    """Perform one recorded effect; schedules its own retry when the failure may pass."""
    outcome = effect_perform(effect_id=effect_id, tenant_id=tenant_id)
    if outcome.retry_in is not None:
        # A little late rather than early: the row is not due before its retry time.
        effect_enqueue(Effect(pk=effect_id, tenant_id=tenant_id), countdown=outcome.retry_in + 0.5)
    return outcome.status.value


@shared_task(name="effects.requeue_lost")
def requeue_lost() -> int:
    """Every 30 s: enqueue again the pending effects whose enqueue or worker was lost."""
    return effects_requeue_lost()
