"""Console pages of the topic viewer. The URL holds the view's state (topic, partition, start,
filter, mode), so a link shows the same view; the page's script reads it from data attributes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from smarteros.parsing import (
    InvalidValue,
    parse_limit,
    parse_offset,
    parse_partition,
    parse_partition_or_all,
    parse_text,
)
from telemetry.queries import TelemetryUnavailable
from telemetry.topics.access import TopicDenied, TopicGrant, topic_grant
from telemetry.topics.actions import (
    ActionRefused,
    dead_letter_replay,
    dead_letter_replayed,
    dead_letters_replay_all,
    export_lines,
)
from telemetry.topics.browse import BrowseError, TopicUnavailable, browse, message_at, parse_start
from telemetry.topics.filters import FilterError, compile_filter
from telemetry.topics.limits import ViewerLimitReached, work_acquire, work_release
from telemetry.topics.listing import KINDS, topic_query_parse, topics_list
from telemetry.topics.masking import Masker
from telemetry.topics.overview import topics_overview
from telemetry.topics.pending import topic_pending
from telemetry.topics.published import Published, topics_published


def _grant_or_404(request: HttpRequest, topic: Any) -> TopicGrant:
    try:
        return topic_grant(request.user, topic)
    except TopicDenied as exc:
        raise Http404(str(exc)) from None


def _param(request: HttpRequest, name: str) -> str:
    return request.GET.get(name, request.POST.get(name, ""))


def _position(request: HttpRequest) -> tuple[int, int]:
    """The message a request names: its partition and offset, both required."""
    return parse_partition(_param(request, "partition")), parse_offset(_param(request, "offset"))


def _bad(
    exc: BrowseError | FilterError | ActionRefused | InvalidValue, status: int = 400
) -> JsonResponse:
    return JsonResponse(
        {"error": str(exc), "field": getattr(exc, "field", "")},
        status=getattr(exc, "status", status),
    )


@login_required
@require_GET
def topics_page(request: HttpRequest) -> HttpResponse:
    """One page of the topics the operator may see, searched by tenant, name and kind on the
    server; only that page's topics are asked of the broker."""
    try:
        query = topic_query_parse(request.GET)
    except InvalidValue as exc:
        return _bad(exc)
    listing = topics_list(request.user, query)
    error = counts_error = ""
    overview = None
    try:
        overview = topics_overview(listing.grants)
    except Exception as exc:  # the broker is down or slow: say so instead of a 500
        from confluent_kafka import KafkaException

        if not isinstance(exc, KafkaException):
            raise
        error = f"Kafka unavailable: {exc}"
    try:
        published = topics_published(listing.grants)
    except TelemetryUnavailable as exc:
        published, counts_error = Published(), f"Message counts unavailable: {exc}"
    for info in overview.topics if overview else []:
        info.published = published.of(info.grant.topic)
    pager = {
        page: urlencode(query.params(page=page))
        for page in (query.page - 1, query.page + 1)
        if 1 <= page <= listing.pages
    }
    context = {
        "overview": overview,
        "published": published,
        "error": error,
        "counts_error": counts_error,
        "listing": listing,
        "query": query,
        "kinds": KINDS,
        "previous": pager.get(query.page - 1),
        "next": pager.get(query.page + 1),
    }
    return render(request, "topics/list.html", context)


@login_required
@require_GET
def topic_view(request: HttpRequest) -> HttpResponse:
    grant = _grant_or_404(request, request.GET.get("topic"))
    state = {
        "topic": grant.topic,
        "partition": request.GET.get("partition", ""),
        "start": request.GET.get("start", "newest"),
        "limit": request.GET.get("limit", "100"),
        "q": request.GET.get("q", ""),
        "cel": request.GET.get("cel", ""),
        "mode": "live" if request.GET.get("mode") == "live" else "browse",
    }
    pending = topic_pending(grant)
    if pending is not None and request.headers.get("HX-Target") == "dead-letters-pending":
        # The pending list refreshing itself: only its own fragment.
        return render(request, "topics/_pending.html", {"grant": grant, "pending": pending})
    return render(
        request,
        "topics/view.html",
        {
            "grant": grant,
            "state": state,
            "max_results": settings.TOPICS_BROWSE_MAX_RESULTS,
            "pending": pending,
        },
    )


@login_required
@require_GET
def message_detail(request: HttpRequest) -> HttpResponse:
    grant = _grant_or_404(request, request.GET.get("topic"))
    try:
        partition, offset = _position(request)
        record = message_at(
            topic=grant.topic,
            partition=partition,
            offset=offset,
            masker=Masker.for_grant(grant),
        )
    except (BrowseError, InvalidValue) as exc:
        return _bad(exc)
    except TopicUnavailable as exc:
        return JsonResponse({"error": f"topic unavailable: {exc}"}, status=503)
    return render(
        request,
        "topics/message.html",
        {
            "grant": grant,
            "record": record,
            "time": datetime.fromtimestamp(record["timestamp"] / 1000, tz=UTC).isoformat(),
            "replayed": dead_letter_replayed(grant, partition, offset),
            "value_pretty": json.dumps(record["value"], indent=2, ensure_ascii=False)
            if not isinstance(record["value"], str)
            else record["value"],
        },
    )


@login_required
@require_POST
def replay(request: HttpRequest) -> HttpResponse:
    grant = _grant_or_404(request, request.POST.get("topic"))
    try:
        partition, offset = _position(request)
        done = dead_letter_replay(
            user=request.user,
            grant=grant,
            partition=partition,
            offset=offset,
            again=request.POST.get("again") == "1",
        )
    except (BrowseError, ActionRefused, InvalidValue) as exc:
        if request.headers.get("HX-Request"):
            return render(
                request,
                "topics/replayed.html",
                {"error": str(exc)},
                status=getattr(exc, "status", 400),
            )
        return _bad(exc)
    if request.headers.get("HX-Request"):
        return render(request, "topics/replayed.html", {"done": done})
    return JsonResponse({"topic": done.topic, "partition": done.partition, "offset": done.offset})


@login_required
@require_POST
def replay_all(request: HttpRequest) -> HttpResponse:
    """Every dead letter of the topic not replayed before, after its name is typed."""
    grant = _grant_or_404(request, request.POST.get("topic"))
    if request.POST.get("confirm", "").strip() != grant.topic:
        return render(
            request,
            "topics/replayed.html",
            {"error": f"Type {grant.topic} to confirm."},
            status=400,
        )
    try:
        done = dead_letters_replay_all(
            user=request.user, grant=grant, limit=settings.TOPICS_REPLAY_ALL_MAX
        )
    except ActionRefused as exc:
        return render(request, "topics/replayed.html", {"error": str(exc)}, status=exc.status)
    return render(request, "topics/replayed.html", {"all": done, "topic": grant.topic})


@login_required
@require_GET
async def export(request: HttpRequest) -> HttpResponse:
    """The export scans for up to its time budget: in a thread of its own, not in the one
    thread that serves every sync view of the process (/healthz included)."""
    return await sync_to_async(_export_within_limit, thread_sensitive=False)(request)


def _export_within_limit(request: HttpRequest) -> HttpResponse:
    grant = _grant_or_404(request, request.GET.get("topic"))
    if not grant.can_export:
        return JsonResponse(
            {"error": "exporting needs the operator or tenant admin role"}, status=403
        )
    user_id, lease = request.user.pk, f"export:{uuid.uuid4().hex}"
    assert user_id is not None  # login_required
    try:
        work_acquire("exports", user_id=user_id, lease=lease)
    except ViewerLimitReached as exc:
        return JsonResponse({"error": str(exc), "field": "limit"}, status=429)
    try:
        return _export(request, grant)
    finally:
        work_release("exports", user_id=user_id, lease=lease)


def _export(request: HttpRequest, grant: TopicGrant) -> HttpResponse:
    try:
        limit = parse_limit(
            _param(request, "limit"),
            maximum=settings.TOPICS_EXPORT_MAX_MESSAGES,
            default=min(1000, settings.TOPICS_EXPORT_MAX_MESSAGES),
        )
        # Recorded in the audit trail as sent: PostgreSQL stores no NUL, so none is accepted.
        query = {
            k: parse_text(request.GET.get(k, ""), field=k, max_length=20_000)
            for k in ("partition", "start", "q", "cel", "limit")
        }
        message_filter = compile_filter(q=query["q"], cel_source=query["cel"])
        result = browse(
            topic=grant.topic,
            masker=Masker.for_grant(grant),
            message_filter=message_filter,
            partition=parse_partition_or_all(_param(request, "partition")),
            start=parse_start(request.GET.get("start") or "oldest"),
            limit=limit,
            max_results=settings.TOPICS_EXPORT_MAX_MESSAGES,
        )
        body = export_lines(user=request.user, grant=grant, records=result.messages, query=query)
    except (BrowseError, FilterError, ActionRefused, InvalidValue) as exc:
        return _bad(exc)
    except TopicUnavailable as exc:
        return JsonResponse({"error": f"topic unavailable: {exc}"}, status=503)
    response = HttpResponse(body, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{grant.topic}.jsonl"'
    response["X-Scanned"] = str(result.scanned)
    return response
