"""The route table of the trail names real routes, and every /api/v1/ route is either audited
or exempt with a reason."""

from django.urls import URLPattern, URLResolver, get_resolver

from audit.specs import EXEMPT_ROUTES, ROUTES, spec_for_route


def api_route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and pattern.name:
                names.add(pattern.name)

    walk(get_resolver().url_patterns, "")
    return names


def test_every_named_route_exists():
    routes = api_route_names()

    assert sorted(set(ROUTES) - routes) == []
    assert sorted(set(EXEMPT_ROUTES) - routes) == []
    assert set(ROUTES).isdisjoint(EXEMPT_ROUTES)


def test_a_route_nobody_named_is_audited_under_its_url_name():
    assert spec_for_route("some-new-route").object_type == "some-new-route"
    assert spec_for_route("auth-login") is None
