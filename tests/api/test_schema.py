"""The OpenAPI schema generates cleanly and is served with its Swagger UI."""

from pathlib import Path

from django.core.management import call_command

from tests.conftest import Cast


def test_schema_generates_without_warnings_and_validates(tmp_path: Path, db: None) -> None:
    # Raises SchemaGenerationError on any warning (an unresolvable type, an enum name
    # collision, an undocumented path parameter ...).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


def test_schema_endpoint_and_docs_page_for_a_signed_in_user(cast: Cast, client: object) -> None:
    client.force_login(cast.alice.user)

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/clients/",
        "/api/v1/clients/{client_no}/",
        "/api/v1/clients/{client_no}/interactions/",
        "/api/v1/trades/",
        "/api/v1/cash-flows/",
        "/api/v1/asset-snapshots/",
        "/api/v1/instruments/",
    ):
        assert path in paths
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_schema_and_docs_are_for_signed_in_users_only(client: object, db: None) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code in (401, 403)
    assert b"/api/v1/" not in schema.content
    assert docs.status_code == 302
    assert docs["Location"].startswith("/accounts/login/")
