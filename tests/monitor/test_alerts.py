"""The fleet file's [alerts] table (every error names its place) and the evaluator's rules
against a live state driven by hand on an explicit clock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import GridStatusValue
from tegkit.monitor.alerts import (
    FIRMWARE_OPEN_S,
    MAX_RULES,
    MAX_WEBHOOKS,
    RULE_KINDS,
    AlertBook,
    AlertConfig,
    AlertRule,
    Webhook,
    parse_alert_config,
)
from tegkit.monitor.live import LiveState
from tegkit.monitor.readings import Reading

SECRET = "s3cret-value-that-is-long-enough"
ENV = {"HOOK_SECRET": SECRET}
GATEWAYS = ["smith-home", "jones-home"]
LABELS = ["customer", "region"]


def parse(table: dict[str, Any], base_dir: Path | None = None, **kw: Any) -> AlertConfig:
    return parse_alert_config(
        table,
        base_dir=base_dir or Path("/nonexistent"),
        environ=kw.pop("environ", ENV),
        gateway_names=kw.pop("gateway_names", GATEWAYS),
        label_names=kw.pop("label_names", LABELS),
        **kw,
    )


def hook(**over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "ops",
        "url": "https://127.0.0.1:9/hook",
        "secret_env": "HOOK_SECRET",
    }
    entry.update(over)
    return {k: v for k, v in entry.items() if v is not None}


def error_of(table: dict[str, Any], **kw: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        parse(table, **kw)
    assert SECRET not in str(caught.value)
    return caught.value


def test_a_full_table_parses() -> None:
    config = parse(
        {
            "monitor": "office-1",
            "webhooks": [hook(), hook(name="pager", url="http://[::1]:8080/x")],
            "rules": [
                {"kind": "unreachable", "minutes": 10, "gateways": ["smith-home"]},
                {"kind": "grid_outage", "labels": {"region": "west"}, "webhooks": ["pager"]},
                {"kind": "firmware_changed", "webhooks": []},
            ],
        }
    )
    assert config.monitor == "office-1"
    assert [w.name for w in config.webhooks] == ["ops", "pager"]
    assert config.webhooks[0].secret == SECRET
    assert config.rules[0] == AlertRule("unreachable", 10.0, frozenset({"smith-home"}))
    assert config.rules[1].labels == {"region": "west"}
    assert config.rules[1].webhooks == ("pager",)
    assert config.rules[2].webhooks == ()
    assert SECRET not in repr(config)


def test_every_kind_is_accepted() -> None:
    config = parse({"rules": [{"kind": kind} for kind in RULE_KINDS]})
    assert [r.kind for r in config.rules] == list(RULE_KINDS)
    assert all(r.gateways is None and r.webhooks is None for r in config.rules)


@pytest.mark.parametrize(
    ("table", "field", "shown"),
    [
        ({"rule": []}, "alerts: rule", "rule"),
        ({"monitor": "no spaces"}, "alerts: monitor", "no spaces"),
        ({"webhooks": {"name": "ops"}}, "alerts.webhooks", "dict"),
        ({"rules": {"kind": "unreachable"}}, "alerts.rules", "dict"),
        ({"webhooks": ["ops"]}, "alerts.webhooks[1]", "ops"),
        ({"webhooks": [hook(name="a b")]}, "alerts.webhooks[1]: name", "a b"),
        ({"webhooks": [hook(name=None)]}, "alerts.webhooks[1]: name", None),
        ({"webhooks": [hook(), hook()]}, 'alerts.webhooks[2] "ops": name', "ops"),
        ({"webhooks": [hook(token="x")]}, 'alerts.webhooks[1] "ops": token', "token"),
        ({"webhooks": [hook(url=None)]}, 'alerts.webhooks[1] "ops": url', None),
        ({"webhooks": [hook(url="ftp://h/x")]}, 'alerts.webhooks[1] "ops": url', "ftp://h/x"),
        ({"webhooks": [hook(url="https:///x")]}, 'alerts.webhooks[1] "ops": url', "https:///x"),
        (
            {"webhooks": [hook(url="https://h:99999/")]},
            'alerts.webhooks[1] "ops": url',
            "https://h:99999/",
        ),
        (
            {"webhooks": [hook(url="https://me:pw@h/")]},
            'alerts.webhooks[1] "ops": url',
            "https://***@h",
        ),
        (
            {"webhooks": [hook(secret_env=None)]},
            'alerts.webhooks[1] "ops": secret_env',
            "neither",
        ),
        (
            {"webhooks": [hook(secret_file="x")]},
            'alerts.webhooks[1] "ops": secret_env',
            "both",
        ),
        ({"webhooks": [hook(secret_env="UNSET")]}, 'alerts.webhooks[1] "ops": secret_env', "UNSET"),
        ({"webhooks": [hook(secret_env=3)]}, 'alerts.webhooks[1] "ops": secret_env', 3),
        ({"rules": ["unreachable"]}, "alerts.rules[1]", "unreachable"),
        ({"rules": [{"kind": "fire"}]}, "alerts.rules[1]: kind", "fire"),
        ({"rules": [{}]}, "alerts.rules[1]: kind", None),
        ({"rules": [{"kind": "unreachable", "every": 1}]}, "alerts.rules[1]: every", "every"),
        ({"rules": [{"kind": "unreachable", "minutes": -1}]}, "alerts.rules[1]: minutes", -1),
        (
            {"rules": [{"kind": "unreachable", "minutes": 10081}]},
            "alerts.rules[1]: minutes",
            10081,
        ),
        ({"rules": [{"kind": "unreachable", "minutes": True}]}, "alerts.rules[1]: minutes", True),
        ({"rules": [{"kind": "unreachable", "minutes": "5"}]}, "alerts.rules[1]: minutes", "5"),
        (
            {"rules": [{"kind": "unreachable", "minutes": float("nan")}]},
            "alerts.rules[1]: minutes",
            None,
        ),
        (
            {"rules": [{"kind": "firmware_changed", "minutes": 5}]},
            "alerts.rules[1]: minutes",
            5,
        ),
        (
            {"rules": [{"kind": "unreachable", "gateways": "smith-home"}]},
            "alerts.rules[1]: gateways",
            "smith-home",
        ),
        (
            {"rules": [{"kind": "unreachable", "gateways": ["nobody"]}]},
            "alerts.rules[1]: gateways",
            "nobody",
        ),
        (
            {"rules": [{"kind": "unreachable", "gateways": ["smith-home", "smith-home"]}]},
            "alerts.rules[1]: gateways",
            ["smith-home", "smith-home"],
        ),
        (
            {"rules": [{"kind": "unreachable", "labels": ["west"]}]},
            "alerts.rules[1]: labels",
            ["west"],
        ),
        (
            {"rules": [{"kind": "unreachable", "labels": {"colour": "red"}}]},
            "alerts.rules[1]: labels.colour",
            "colour",
        ),
        (
            {"rules": [{"kind": "unreachable", "labels": {"region": 3}}]},
            "alerts.rules[1]: labels.region",
            3,
        ),
        (
            {"rules": [{"kind": "unreachable", "webhooks": ["pager"]}]},
            "alerts.rules[1]: webhooks",
            "pager",
        ),
        (
            {"rules": [{"kind": "unreachable"}, {"kind": "unreachable", "webhooks": "ops"}]},
            "alerts.rules[2]: webhooks",
            "ops",
        ),
    ],
)
def test_each_error_names_its_place(table: dict[str, Any], field: str, shown: object) -> None:
    error = error_of(table)
    assert error.field == field
    if shown is not None:
        assert error.value == shown or str(shown) in str(error.value)
    assert error.allowed  # what is allowed is said


def test_caps_on_counts() -> None:
    hooks = [hook(name=f"h{i}") for i in range(MAX_WEBHOOKS + 1)]
    assert error_of({"webhooks": hooks}).field == "alerts.webhooks"
    rules = [{"kind": "unreachable"}] * (MAX_RULES + 1)
    assert error_of({"rules": rules}).field == "alerts.rules"
    assert len(parse({"rules": [{"kind": "unreachable"}] * MAX_RULES}).rules) == MAX_RULES


def test_a_short_secret_is_refused_without_showing_it() -> None:
    error = error_of({"webhooks": [hook()]}, environ={"HOOK_SECRET": "short"})
    assert error.field == 'alerts.webhooks[1] "ops": secret_env'
    assert error.value == "HOOK_SECRET"
    assert "short" not in str(error).replace("a secret of at least", "")


def test_an_empty_variable_is_unset() -> None:
    error = error_of({"webhooks": [hook()]}, environ={"HOOK_SECRET": ""})
    assert error.field == 'alerts.webhooks[1] "ops": secret_env'


def secret_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "hook.secret"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_secret_file_relative_to_the_fleet_file(tmp_path: Path) -> None:
    secret_file(tmp_path, SECRET + "\nignored second line\n")
    config = parse(
        {"webhooks": [hook(secret_env=None, secret_file="hook.secret")]}, base_dir=tmp_path
    )
    assert config.webhooks[0].secret == SECRET


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_secret_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    secret_file(tmp_path, SECRET, mode)
    error = error_of(
        {"webhooks": [hook(secret_env=None, secret_file="hook.secret")]}, base_dir=tmp_path
    )
    assert error.field == 'alerts.webhooks[1] "ops": secret_file'
    assert "chmod 600" in error.allowed
    assert f"{mode:04o}" in str(error.value)


def test_a_missing_empty_or_folder_secret_file(tmp_path: Path) -> None:
    table = {"webhooks": [hook(secret_env=None, secret_file="hook.secret")]}
    assert "No such file" in str(error_of(table, base_dir=tmp_path).value)
    secret_file(tmp_path, "")
    assert error_of(table, base_dir=tmp_path).allowed == "the secret on its first line"
    (tmp_path / "hook.secret").unlink()
    (tmp_path / "hook.secret").mkdir(mode=0o700)
    assert error_of(table, base_dir=tmp_path).field.endswith("secret_file")


def test_a_secret_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    path = secret_file(tmp_path, SECRET)
    os.chown(path, 65534, 65534)
    error = error_of(
        {"webhooks": [hook(secret_env=None, secret_file=str(path))]}, base_dir=Path("/")
    )
    assert "owner uid 65534" in str(error.value)


def test_every_error_collected_when_asked() -> None:
    errors: list[InvalidInputError] = []
    config = parse(
        {
            "webhooks": [hook(url="ftp://x"), hook(name="good")],
            "rules": [
                {"kind": "fire", "minutes": -3},
                {"kind": "unreachable", "webhooks": ["ops", "good"]},
                {"kind": "grid_outage", "gateways": ["nobody"]},
            ],
        },
        errors=errors,
    )
    assert [e.field for e in errors] == [
        'alerts.webhooks[1] "ops": url',
        "alerts.rules[1]: kind",
        "alerts.rules[1]: minutes",
        "alerts.rules[3]: gateways",
    ]
    # the valid parts are kept; the rule naming the broken webhook is not blamed for it
    assert [w.name for w in config.webhooks] == ["good"]
    assert [r.kind for r in config.rules] == ["unreachable"]
    assert config.rules[0].webhooks == ("good",)


def test_webhook_repr_keeps_the_secret() -> None:
    assert SECRET not in repr(Webhook("ops", "https://h/", SECRET))


# --- the evaluator on a hand-driven live state ---------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now_s


def reading(
    at: float, grid: str = GridStatusValue.CONNECTED, soe_raw_percent: float = 60.0
) -> Reading:
    return Reading(
        gateway="smith-home", taken_at=at, grid_status=grid, soe_raw_percent=soe_raw_percent
    )


def book_for(*rules: AlertRule, stale_after_s: float = 30.0) -> tuple[AlertBook, LiveState, Clock]:
    clock = Clock()
    live = LiveState(clock=clock, stale_after_s=stale_after_s)
    live.add("smith-home", "https://127.0.0.1:1")
    live.add("jones-home", "https://127.0.0.1:2")
    book = AlertBook(
        AlertConfig(rules=rules),
        live,
        labels_of={"smith-home": {"region": "west"}, "jones-home": {"region": "east"}}.__getitem__,
        monitor_name="test",
    )
    return book, live, clock


def test_unreachable_opens_after_minutes_and_resolves_on_a_reading() -> None:
    book, live, clock = book_for(AlertRule("unreachable", minutes=10, labels={"region": "west"}))
    g = live.get("smith-home")
    j = live.get("jones-home")
    assert g is not None and j is not None
    g.reading = reading(clock.now_s)
    assert book.evaluate() == []
    clock.now_s += 60
    g.problem, g.problem_reason, g.problem_since = "unreachable", "refused", clock.now_s
    j.problem, j.problem_since = "unreachable", clock.now_s  # not selected (east)
    clock.now_s += 599
    assert book.evaluate() == [] and book.alerts() == []
    clock.now_s += 1
    (opened,) = book.evaluate()
    assert (opened.kind, opened.gateway, opened.state) == ("unreachable", "smith-home", "open")
    assert opened.since_s == g.problem_since and opened.labels == {"region": "west"}
    assert book.open_count("smith-home") == 1 and book.open_counts() == {"smith-home": 1}
    clock.now_s += 3600
    assert book.evaluate() == []  # still one alert, not a second
    g.problem = g.problem_since = None
    g.reading = reading(clock.now_s)
    (resolved,) = book.evaluate()
    assert resolved is opened and resolved.state == "resolved"
    assert resolved.resolved_s == clock.now_s
    assert book.open_count("smith-home") == 0
    assert book.alerts(state="resolved") == [opened]
    assert book.alerts(gateway="jones-home") == []
    payload = book.to_json(resolved)
    assert payload["since"].endswith("Z") and payload["monitor"] == "test"
    assert set(payload) == {
        "id", "kind", "gateway", "labels", "state", "since", "resolved_at", "detail", "monitor"
    }  # fmt: skip


def test_a_stale_reading_counts_as_unreachable_from_when_it_was_taken() -> None:
    book, live, clock = book_for(
        AlertRule("unreachable", minutes=1, gateways=frozenset({"smith-home"}))
    )
    g = live.get("smith-home")
    assert g is not None
    assert book.evaluate() == []  # nothing known yet: no alert at start-up
    g.reading = reading(clock.now_s)
    clock.now_s += 59
    assert book.evaluate() == []
    clock.now_s += 1
    (opened,) = book.evaluate()
    assert opened.since_s == g.reading.taken_at


def test_grid_outage_unknown_while_stale_and_soe_hysteresis() -> None:
    book, live, clock = book_for(
        AlertRule("grid_outage", gateways=frozenset({"smith-home"})),
        AlertRule("soe_below_reserve", gateways=frozenset({"smith-home"})),
    )
    g = live.get("smith-home")
    assert g is not None
    g.backup_reserve_raw_percent = 24.0
    g.reading = reading(clock.now_s, GridStatusValue.ISLANDED_ACTIVE, 23.5)
    kinds = sorted(a.kind for a in book.evaluate())
    assert kinds == ["grid_outage", "soe_below_reserve"]
    clock.now_s += 300  # the reading went stale: nothing known, nothing resolves
    assert book.evaluate() == []
    g.reading = reading(clock.now_s, GridStatusValue.ISLANDED_ACTIVE, 24.5)
    assert book.evaluate() == []  # above the reserve, but within the hysteresis
    g.reading = reading(clock.now_s, GridStatusValue.CONNECTED, 25.5)
    assert sorted(a.kind for a in book.evaluate()) == ["grid_outage", "soe_below_reserve"]
    assert book.alerts(state="open") == []


def test_stopped_and_auth_failing() -> None:
    book, live, clock = book_for(AlertRule("system_stopped"), AlertRule("auth_failing"))
    g = live.get("smith-home")
    assert g is not None
    g.problem, g.problem_since = "stopped", clock.now_s
    (stopped,) = book.evaluate()
    assert stopped.kind == "system_stopped"
    g.problem, g.problem_reason, g.problem_since = "auth", "bad password", clock.now_s
    (auth,) = book.evaluate()  # stopped is not known to have ended: no reading yet
    assert auth.kind == "auth_failing" and auth.detail == "bad password"
    g.problem = None
    g.reading = reading(clock.now_s)
    assert sorted(a.kind for a in book.evaluate()) == ["auth_failing", "system_stopped"]


def test_firmware_changed_is_an_event() -> None:
    book, live, clock = book_for(AlertRule("firmware_changed"))
    g = live.get("smith-home")
    assert g is not None
    g.version = "24.4.0"
    assert book.evaluate() == []  # the first version seen is the baseline
    g.version = "24.12.1"
    clock.now_s += 10
    (opened,) = book.evaluate()
    assert opened.detail == "24.4.0 -> 24.12.1" and opened.state == "open"
    clock.now_s += FIRMWARE_OPEN_S - 1
    assert book.evaluate() == []
    clock.now_s += 1
    assert book.evaluate() == [opened]
    assert opened.state == "resolved" and book.alerts(state="open") == []
    clock.now_s += 10
    book.evaluate()
    assert book.alerts(state="open") == []  # the same change never opens twice
    g.version = "25.2.0"
    (second,) = book.evaluate()
    assert second.id != opened.id and second.detail == "24.12.1 -> 25.2.0"
    g.version = "25.2.1"  # a newer change while one is open supersedes it
    clock.now_s += 5
    resolved, third = book.evaluate()
    assert resolved is second and second.state == "resolved"
    assert third.detail == "25.2.0 -> 25.2.1" and book.alerts(state="open") == [third]


def test_a_reload_resolves_alerts_of_removed_rules_only() -> None:
    kept = AlertRule("system_stopped")
    book, live, clock = book_for(kept, AlertRule("auth_failing"))
    for name in ("smith-home", "jones-home"):
        g = live.get(name)
        assert g is not None
        g.problem, g.problem_since = "stopped", clock.now_s
    assert len(book.evaluate()) == 2
    book.set_config(AlertConfig(rules=(AlertRule("system_stopped"), AlertRule("grid_outage"))))
    assert len(book.alerts(state="open")) == 2
    book.set_config(AlertConfig(rules=(AlertRule("grid_outage"),)))
    assert book.alerts(state="open") == []
    assert {a.detail for a in book.alerts()} == {"the rule was removed"}


def test_resolved_alerts_kept_are_bounded() -> None:
    clock = Clock()
    live = LiveState(clock=clock)
    g = live.add("smith-home", "https://127.0.0.1:1")
    book = AlertBook(AlertConfig(rules=(AlertRule("system_stopped"),)), live, recent_kept=5)
    for _ in range(20):
        g.problem, g.problem_since, g.reading = "stopped", clock.now_s, None
        book.evaluate()
        clock.now_s += 1
        g.problem, g.reading = None, reading(clock.now_s)
        book.evaluate()
    assert len(book.alerts()) == 5
    assert len({a.id for a in book.alerts()}) == 5
