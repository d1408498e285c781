"""The official VGS Python SDK (PyPI `vgs-api-client`, vault API v1) against the mock.

Stores and reveals the test card `vaultctl bench` uses, one operation at a time
(concurrency 1), and prints one JSON document: operations per second and latency
percentiles for each flow. The requests match vaultlink's:

  insert    one `POST /aliases` with the card's five values (number FPE_SIX_T_FOUR,
            expiry month, expiry year, holder name PERSISTENT; CVC VOLATILE)
  retrieve  one `GET /aliases?aliases=…` for the four persistent aliases, then
            `GET /aliases/{cvc}?storage=VOLATILE`

Run it against `vaultctl mock serve --addr 127.0.0.1:PORT --rate-limit none`:

  python3 -m venv /tmp/vgs-venv
  /tmp/vgs-venv/bin/pip install vgs-api-client async_timeout  # imported, not declared
  /tmp/vgs-venv/bin/python benches/python/vgs_sdk_bench.py --host http://127.0.0.1:PORT

The SDK is used as published: its `vgs.Aliases` for store and reveal; the volatile
CVC reveal, which `Aliases.reveal` cannot ask for, goes through the SDK's own
generated client (`vgs_api_client.api.aliases_api.AliasesApi.reveal_alias`).
"""

import argparse
import json
import statistics
import time

import vgs
import vgs_api_client
from vgs_api_client.api import aliases_api

CARD_VALUES = [
    ("4111111111111111", "card_number", "FPE_SIX_T_FOUR", "PERSISTENT"),
    ("04", "card_exp_month", "UUID", "PERSISTENT"),
    ("2030", "card_exp_year", "UUID", "PERSISTENT"),
    ("987", "card_cvc", "UUID", "VOLATILE"),
    ("Ada Lovelace", "card_holder_name", "UUID", "PERSISTENT"),
]


def redact_request():
    return [
        {
            "value": value,
            "classifiers": ["vaultlink", field],
            "format": alias_format,
            "storage": storage,
        }
        for value, field, alias_format, storage in CARD_VALUES
    ]


def alias_of(record):
    aliases = record["aliases"]
    first = aliases[0]
    return first["alias"] if "alias" in first else first["value"]


def measure(name, operation, requests, warmup):
    for _ in range(warmup):
        operation()
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        at = time.perf_counter()
        operation()
        latencies.append(time.perf_counter() - at)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "flow": name,
        "concurrency": 1,
        "requests": requests,
        "ops_per_s": round(requests / elapsed, 1),
        "p50_us": round(statistics.median(latencies) * 1e6, 1),
        "p99_us": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1e6, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="e.g. http://127.0.0.1:18080")
    parser.add_argument("--username", default="demo-user")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    config = vgs.config(username=args.username, password=args.password, host=args.host)
    sdk = vgs.Aliases(config)
    generated = aliases_api.AliasesApi(
        vgs_api_client.ApiClient(
            vgs.config(username=args.username, password=args.password, host=args.host)
        )
    )

    stored = sdk.redact(redact_request())
    aliases = [alias_of(record) for record in stored]
    persistent = [a for a, (_, _, _, storage) in zip(aliases, CARD_VALUES) if storage == "PERSISTENT"]
    cvc = aliases[3]

    def insert():
        sdk.redact(redact_request())

    def retrieve():
        revealed = sdk.reveal(persistent)
        assert len(revealed) == len(persistent)
        generated.reveal_alias(alias=cvc, storage="VOLATILE")

    runs = [
        measure("insert", insert, args.requests, args.warmup),
        measure("retrieve", retrieve, args.requests, args.warmup),
    ]
    print(json.dumps({
        "sdk": "vgs-api-client " + vgs.__version__,
        "api": "v1",
        "host": args.host,
        "runs": runs,
    }, indent=2))


if __name__ == "__main__":
    main()
