"""Sovereignty policy over real HTTP: a gateway whose deployments declare where they run.

The upstream is the shared embedded server; the gateway declares one deployment as a
French provider and one as a US cloud, so the policy decides by those facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from .conftest import Server, start_server, stop_server

pytestmark = pytest.mark.model
LOCAL = "smollm2-135m-instruct"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def gateway(embedded: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    french = {
        "name": "mistral-fr",
        "engine": "mistral",
        "base_url": embedded.url,
        "upstream_model": LOCAL,
        "api_key_env": "UPSTREAM_KEY",
        "operator": "Mistral AI",
        "jurisdiction": "FR",
        "retention_days": 30,
        "trains_on_data": False,
    }
    us = {
        "name": "us-cloud",
        "engine": "openai",
        "base_url": embedded.v1,
        "upstream_model": LOCAL,
        "api_key_env": "UPSTREAM_KEY",
        "operator": "Hyperscaler",
        "jurisdiction": "US",
    }
    config = {
        "models": [
            {"id": "eu-then-us", "deployments": [french, us]},
            {"id": "us-only", "deployments": [us]},
            {"id": "embed-us", "type": "embeddings",
             "deployments": [{**us, "upstream_model": "multilingual-e5-small"}]},
        ],
        "policy": {"tenants": {"default": {"internal": {"jurisdictions": ["on-prem", "EU"],
                                                        "allow_training": False}}}},
    }  # fmt: skip
    server = start_server(
        tmp_path_factory.mktemp("policy-gw"), config, env={"UPSTREAM_KEY": embedded.key},
        key="sk-sv-policygw" + "p" * 32,
    )  # fmt: skip
    yield server
    stop_server(server)


def upstream_calls(embedded: Server) -> int:
    text = httpx.get(embedded.url + "/metrics").text
    return sum(
        int(float(n))
        for n in re.findall(
            r'souverain_http_requests_total\{method="POST",route="/v1/[^"]+",status="\d+"\} (\S+)',
            text,
        )
    )


def post(
    gateway: Server, path: str, body: dict[str, object], level: str | None = None
) -> httpx.Response:
    headers = {"X-Souverain-Classification": level} if level else {}
    with gateway.client() as client:
        return client.post(path, json=body, headers=headers)


def test_public_data_goes_to_the_first_deployment_and_says_so(gateway: Server) -> None:
    response = post(
        gateway, "/v1/chat/completions", {"model": "eu-then-us", "messages": HI, "max_tokens": 3}
    )
    assert response.status_code == 200
    assert response.headers["x-souverain-deployment"] == "mistral-fr"
    assert response.headers["x-souverain-jurisdiction"] == "FR"
    assert response.headers["x-souverain-policy"].startswith("sha256:")
    assert response.headers["x-souverain-classification"] == "public"


def test_confidential_data_may_go_to_the_eu_provider(gateway: Server) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key=gateway.key, max_retries=0,
                           default_headers={"X-Souverain-Classification": "confidential"})  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(
        model="eu-then-us", messages=HI, max_tokens=3
    )  # type: ignore[arg-type]
    assert raw.headers["x-souverain-deployment"] == "mistral-fr"
    assert raw.headers["x-souverain-classification"] == "confidential"


@pytest.mark.parametrize("stream", [False, True])
def test_confidential_data_never_reaches_the_us_cloud(
    gateway: Server, embedded: Server, stream: bool
) -> None:
    before = upstream_calls(embedded)
    body = {"model": "us-only", "messages": HI, "stream": stream}
    response = post(gateway, "/v1/chat/completions", body, level="confidential")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "policy_denied"
    assert "us-cloud (rule confidential.jurisdictions)" in error["message"]
    assert upstream_calls(embedded) == before  # not one byte left


def test_metadata_can_raise_the_classification_and_tenant_rules_tighten(gateway: Server) -> None:
    body = {"model": "us-only", "messages": HI, "metadata": {"classification": "internal"}}
    response = post(gateway, "/v1/chat/completions", body)
    assert response.status_code == 403
    assert "tenants.default.internal.jurisdictions" in response.json()["error"]["message"]
    # The header cannot lower what the metadata claims: the highest level wins.
    assert post(gateway, "/v1/chat/completions", body, level="public").status_code == 403


def test_restricted_data_has_nowhere_to_go_but_on_prem(gateway: Server) -> None:
    response = post(
        gateway, "/v1/chat/completions", {"model": "eu-then-us", "messages": HI}, level="restricted"
    )
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "mistral-fr (rule restricted.jurisdictions)" in message
    assert "us-cloud (rule restricted.jurisdictions)" in message
    assert "Hi" not in message  # the rule, never the data


def test_embeddings_go_through_the_same_policy(gateway: Server) -> None:
    body = {"model": "embed-us", "input": "Patientenakte 4711"}
    assert post(gateway, "/v1/embeddings", body, level="confidential").status_code == 403
    allowed = post(gateway, "/v1/embeddings", body)
    assert allowed.status_code == 200 and allowed.headers["x-souverain-jurisdiction"] == "US"


def test_unknown_classification_is_a_400(gateway: Server) -> None:
    response = post(
        gateway, "/v1/chat/completions", {"model": "eu-then-us", "messages": HI}, level="top-secret"
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "classification"


def test_a_keys_default_and_ceiling(gateway: Server) -> None:
    from souverain.identity.keys import KeyStore, load_pepper
    from souverain.store.database import open_database, sqlite_url

    data_dir = gateway.log.parent / "data"
    keys = KeyStore(open_database(sqlite_url(data_dir)), load_pepper(data_dir))
    limited = keys.create(name="hr-app", role="user", default_classification="internal",
                          max_classification="confidential")[1]  # fmt: skip
    headers = {"Authorization": f"Bearer {limited}"}
    body = {"model": "eu-then-us", "messages": HI, "max_tokens": 2}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=60) as client:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert response.headers["x-souverain-classification"] == "internal"  # the key's default
        response = client.post("/v1/chat/completions", json={**body, "model": "us-only"})
        assert response.status_code == 403  # internal data may not go to the US (tenant rule)
        over = client.post(
            "/v1/chat/completions", json=body, headers={"X-Souverain-Classification": "restricted"}
        )
        assert over.status_code == 403
        assert over.json()["error"]["code"] == "classification_ceiling"
