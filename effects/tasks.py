from celery import shared_task

from effects.services import PERFORM_TASK, effects_enqueue, effects_perform, effects_requeue_lost


@shared_task(name=PERFORM_TASK)
def perform(effect_ids: list[int], tenant_id: int) -> dict[str, int]:
    """Perform recorded effects of one tenant; schedules the retries of those whose failure may
    pass. Returns how many ended in each status."""
    outcomes = effects_perform(effect_ids=effect_ids, tenant_id=tenant_id)
    retries: dict[float, list[tuple[int, int]]] = {}
    for effect_id, outcome in outcomes.items():
        if outcome.retry_in is not None:
            retries.setdefault(outcome.retry_in, []).append((tenant_id, effect_id))
    for delay, items in retries.items():
        # A little late rather than early: the rows are not due before their retry time.
        effects_enqueue(items, countdown=delay + 0.5)
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return counts


@shared_task(name="effects.requeue_lost")
def requeue_lost() -> int:
    """Every 30 s: enqueue again the pending effects whose enqueue or worker was lost."""
    return effects_requeue_lost()
