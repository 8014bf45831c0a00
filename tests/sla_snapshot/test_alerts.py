"""Breach alerts: one notification per condition (a burn-rate rule starting to
fire, a monthly objective missed), sent again only after the condition ended,
and retried when the notification failed."""
import copy

from jobs.model import Outcome
from jobs.sla_snapshot.alerts import plan_alerts, settle_alerts

STATES = ("page-1h", "page-6h", "ticket-1d", "ticket-3d")


def snapshot(app="shop", end="2026-11-27T18:00:00Z", **states):
    alerts = {}
    for rule in STATES:
        severity, long, short, threshold = {
            "page-1h": ("page", "1h", "5m", 14.4), "page-6h": ("page", "6h", "30m", 6.0),
            "ticket-1d": ("ticket", "1d", "2h", 3.0), "ticket-3d": ("ticket", "3d", "6h", 1.0)}[rule]
        alerts[rule] = {"severity": severity, "long_window": long, "short_window": short,
                        "threshold": threshold, "long_burn": 20.0, "short_burn": 30.0,
                        "state": states.get(rule.replace("-", "_"), "ok")}
    return {"app": {"name": app, "environment": "production"},
            "period": {"start": end[:11] + "17:00:00Z", "end": end},
            "objectives": {"availability": 0.999}, "alerts": alerts,
            "error_budget": {"remaining_minutes": 12.5}}


def final(app="shop", month="2026-10", **statuses):
    verdicts = {name: {"status": statuses.get(name, "met"), "value": 0.998, "target": 0.999,
                       "reason": None}
                for name in ("availability", "error_budget", "latency_p95")}
    verdicts["error_budget"].update(value=-3.5, target=0.0)
    verdicts["latency_p95"].update(value=0.93, target=0.95, target_ms=500.0)
    return {"app": {"name": app, "environment": "production"}, "month": month,
            "through": "2026-11-01T00:00:00Z", "verdicts": verdicts}


def run(snapshots=(), finals=(), state=None, failed=()):
    actions, planned = plan_alerts(snapshots, finals, state)
    outcomes = [Outcome(a, "failed" if a.target in failed else "succeeded") for a in actions]
    return actions, settle_alerts(state, planned, outcomes)


def test_a_firing_burn_rate_rule_notifies_once():
    actions, state = run([snapshot(page_1h="firing")])
    assert [a.target for a in actions] == ["burn:shop:page-1h"]
    assert actions[0].kind == "notify" and actions[0].params["severity"] == "critical"
    assert "20.0x over 1h" in actions[0].params["title"]
    again, state = run([snapshot(page_1h="firing", end="2026-11-27T19:00:00Z")], state=state)
    assert again == []
    assert state["firing"] == {"burn:shop:page-1h": "2026-11-27T18:00:00Z"}


def test_a_ticket_rule_is_a_warning():
    actions, _ = run([snapshot(ticket_3d="firing")])
    assert [(a.target, a.params["severity"]) for a in actions] == [("burn:shop:ticket-3d", "warning")]


def test_after_the_rule_is_ok_again_a_new_episode_notifies_again():
    _, state = run([snapshot(page_6h="firing")])
    _, state = run([snapshot(page_6h="ok", end="2026-11-27T19:00:00Z")], state=state)
    assert state["firing"] == {}
    actions, _ = run([snapshot(page_6h="firing", end="2026-11-27T20:00:00Z")], state=state)
    assert [a.target for a in actions] == ["burn:shop:page-6h"]


def test_no_data_neither_alerts_nor_resets():
    _, state = run([snapshot(page_1h="firing")])
    actions, after = run([snapshot(page_1h="no-data")], state=state)
    assert actions == [] and after == state


def test_apps_are_separate_conditions():
    actions, _ = run([snapshot("shop", page_1h="firing"), snapshot("api", page_1h="firing")])
    assert sorted(a.target for a in actions) == ["burn:api:page-1h", "burn:shop:page-1h"]


def test_a_missed_monthly_objective_notifies_once_per_objective():
    actions, state = run(finals=[final(availability="missed", error_budget="missed")])
    assert [a.target for a in actions] == ["missed:shop:2026-10:availability",
                                           "missed:shop:2026-10:error_budget"]
    assert "99.800 % against 99.900 %" in actions[0].params["text"]
    assert "-3.50 min remaining" in actions[1].params["text"]
    again, _ = run(finals=[final(availability="missed", error_budget="missed")], state=state)
    assert again == []


def test_unknown_verdicts_do_not_alert():
    actions, _ = run(finals=[final(availability="unknown")])
    assert actions == []


def test_a_failed_notification_is_sent_again_next_run():
    actions, state = run([snapshot(page_1h="firing")], finals=[final(latency_p95="missed")],
                         failed={"burn:shop:page-1h"})
    assert len(actions) == 2
    assert state["firing"] == {} and list(state["missed"]) == ["missed:shop:2026-10:latency_p95"]
    retry, _ = run([snapshot(page_1h="firing")], state=state)
    assert [a.target for a in retry] == ["burn:shop:page-1h"]


def test_old_monthly_conditions_are_forgotten_after_13_months():
    _, state = run(finals=[final(month="2025-09", availability="missed")])
    _, state = run(finals=[final(month="2026-10")], state=state)
    assert state["missed"] == {}
    _, kept = run(finals=[final(month="2026-09", availability="missed")])
    _, kept = run(finals=[final(month="2026-10")], state=kept)
    assert list(kept["missed"]) == ["missed:shop:2026-09:availability"]


def test_the_given_state_is_not_modified():
    _, state = run([snapshot(page_1h="firing")])
    before = copy.deepcopy(state)
    plan_alerts([snapshot(page_1h="ok")], [], state)
    assert state == before
