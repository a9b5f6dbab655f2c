"""The console's forms as a browser sees them: crawl the pages a user can reach, collect every
form (its method, where it goes, its fields and their values), and fill them with hostile
values. Found by crawling, not listed, so a new page's form is fuzzed without editing a test."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from hypothesis import strategies as st

# Not pages of the console, or not to be followed: signing out ends the crawl's session.
SKIP_PREFIXES = ("/logout", "/admin", "/static", "/ws", "/api", "/hooks", "/mcp", "/login")
MAX_PAGES = 60


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # name -> values offered
    submits: list[tuple[str, str]] = field(default_factory=list)  # named buttons

    @property
    def key(self) -> str:
        return f"{self.method} {self.action} {sorted(self.fields)}"


class _Page(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith(("/", "?")):
            self.links.append(urljoin(self.url, a["href"]))
        elif tag == "form":
            action = a.get("hx-post") or a.get("action") or self.url
            method = "post" if a.get("hx-post") else (a.get("method") or "get").lower()
            self._form = Form(method, urlsplit(urljoin(self.url, action)).path)
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "select", "button"):
            name = a.get("name")
            if not name:
                return
            if tag == "button" or a.get("type") == "submit":
                self._form.submits.append((name, a.get("value", "")))
            elif tag == "select":
                self._select = name
                self._form.fields.setdefault(name, [])
            else:
                self._form.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "option" and self._form is not None and self._select:
            self._form.fields[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def crawl(client: Any, start: list[str]) -> list[Form]:
    """Every distinct form on the pages reachable from `start` (same site, GET, at most
    MAX_PAGES pages), as `client` sees them."""
    seen: set[str] = set()
    queue = list(start)
    forms: dict[str, Form] = {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        path = urlsplit(url).path
        if url in seen or path.startswith(SKIP_PREFIXES) or path == "/topics/export/":
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        page = _Page(url)
        page.feed(response.content.decode())
        for form in page.forms:
            if not form.action.startswith(SKIP_PREFIXES):
                forms.setdefault(form.key, form)
        queue += [link for link in page.links if link not in seen]
    return list(forms.values())


# Numbers `str.isdigit()` accepts and `int()` refuses, or that no column, Kafka field or
# datetime holds.
hostile_numbers = st.sampled_from(
    ["²", "\uff11\uff12", "9" * 5000, str(2**31), str(2**63), str(2**64), "-1", "1_0", " 1"]
)
# What a hostile user types: such numbers, NUL, text past any length limit, markup, and
# arbitrary unicode.
hostile_values = st.one_of(
    hostile_numbers,
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "²",
            "\uff11\uff12",
            "9" * 5000,
            str(2**31),
            str(2**63),
            str(2**64),
            "1e309",
            "NaN",
            "\x00",
            "a\x00b",
            "yes",
            "all",
            "<script>alert(1)</script>",
            "https://127.0.0.1:8200/v1/sys",
            "x" * 5000,
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=60),
)


def form_data(data: Any, form: Form) -> dict[str, Any]:
    """Values for `form`: each field kept as offered, replaced by a hostile value, or left
    out; sometimes a field the form does not have; one of its named buttons."""
    values: dict[str, Any] = {}
    for name, offered in form.fields.items():
        choice = data.draw(st.sampled_from(["offered", "hostile", "hostile", "omit"]))
        if choice == "offered" and offered:
            values[name] = data.draw(st.sampled_from(offered))
        elif choice == "hostile":
            values[name] = data.draw(hostile_values)
    if form.submits:
        name, value = data.draw(st.sampled_from(form.submits))
        values[name] = data.draw(st.just(value) | hostile_values)
    if data.draw(st.booleans()):
        values[data.draw(st.text(min_size=1, max_size=12))] = data.draw(hostile_values)
    return values
