"""Error pages of the HTML surfaces that say more than Django's own."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smarteros.parsing import InvalidValue


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: the page says which value was refused and why (an `InvalidValue` names the
    field and the rule); Django's own page says only "Bad Request"."""
    message = str(exception) if isinstance(exception, InvalidValue) else ""
    return render(request, "400.html", {"message": message}, status=400)
