"""The write endpoints: each applies a request body to the gateway state and says what to answer.

A handler takes the gateway, the path parameters and the decoded JSON body (None when the
request had none) and returns (status, body) like the read builders; it raises `Refusal`
for input the gateway rejects. Login and logout live in the server (they set cookies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tegkit.sim import responses
from tegkit.sim.captures import captures
from tegkit.sim.gateway import Answer, Refusal, SimulatedGateway, bad_request

Action = Callable[[SimulatedGateway, dict[str, str], Any], Answer]


def _object(body: Any, shape: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("body", f"a JSON object {shape}")
    return body


def stage_operation(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.stage_operation(body)


def config_completed(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.commit()
    # 21.39.1 capture: config/completed answers with the /api/status body.
    return 202, responses.status(gw, params)[1]


def sitemaster_stop(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    if body is not None and not isinstance(body, dict):
        raise bad_request("body", 'a JSON object such as {"force": true}')
    if gw.running and not gw.can_stop():
        # Spec 001: "HTTP Status 500 if powerwall cannot be stopped at this moment".
        raise Refusal(500, "Cannot Start Wizard", "Unable to stop sitemaster")
    gw.stop_sitemaster()
    return 202, None


def sitemaster_run(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    if gw.fw_update.installing:
        # The install holds the Powerwalls stopped until the gateway restarts on the new firmware.
        raise Refusal(409, "firmware update installing", "Cannot run sitemaster during an update")
    gw.run_sitemaster()
    return 202, None


def site_name(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.set_site_name(_object(body, "{site_name}").get("site_name"))
    return 200, {"site_name": gw.settings.site_name, "timezone": gw.settings.timezone}


def timezone(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.set_timezone(_object(body, "{timezone}").get("timezone"))
    return 200, {"site_name": gw.settings.site_name, "timezone": gw.settings.timezone}


def password_change(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, {"password": gw.change_password(body)}


def add_network(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.add_network(body)


def remove_network(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    name = _object(body, "{network_name}").get("network_name")
    gw.remove_network(name)
    return 200, gw.settings.networks


def set_network_flag(flag: str, value: bool) -> Action:
    """Set one flag ("active", "enabled") of the network named in the path; 404 if none."""

    def act(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
        name = params["network"]
        for network in gw.settings.networks:
            if network.get("network_name") == name:
                network[flag] = value
                gw.touch()
                return 200, network
        raise Refusal(404, "network not found", f"No network named {name}")

    return act


def connect_network(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.add_network(body)


def client_protocols(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    changes = _object(body, "of protocol flags")
    for key, value in changes.items():
        if key not in gw.settings.client_protocols:
            raise bad_request(key, "one of " + ", ".join(gw.settings.client_protocols))
        if not isinstance(value, bool):
            raise bad_request(key, "true or false")
    gw.settings.client_protocols.update(changes)
    gw.touch()
    return 200, gw.settings.client_protocols


def set_cts(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.set_cts(params["serial"], body)


def clear_cts(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.clear_cts(params["serial"])
    return 200, []


def ct_config_post(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    kind = gw.meter_kind(params["serial"])
    raise Refusal(500, f"meter type must be Neurio ({kind})", "Unable to set Amp configuration")


def meter_exists(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.meter_kind(params["serial"])
    return 200, {}


def legal(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.register_legal(body)


def skip(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    return 200, gw.skip_registration()


def conn_tests_start(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.start_job(gw.conn_tests)
    return 200, captures(gw.profile.name).body("system.networks.conn_tests.post")


def testing_start(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    if not gw.running:
        raise Refusal(409, "sitemaster is not running", "Start the system to run the charge test")
    gw.start_job(gw.testing)
    return 202, None


def testing_clear(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.clear_job(gw.testing)
    return 200, responses.system_testing(gw, params)[1]


def update_start(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    gw.start_update()  # an update already under way goes on; the request is still accepted
    return 202, None


def island(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    mode = _object(body, "{island_mode}").get("island_mode")
    allowed = ("backup", "off_grid_intentional", "intentional_reconnect_failsafe")
    if mode not in allowed:
        raise bad_request("island_mode", "one of " + ", ".join(allowed))
    if mode == "backup":
        gw.site.end_outage()
    else:
        gw.site.start_outage()
    gw.settings.island_mode = str(mode)
    gw.touch()
    return 200, {"island_mode": mode}


def logging(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    _object(body, "{level, log}")
    return 200, {}


def accepted(gw: SimulatedGateway, params: dict[str, str], body: Any) -> Answer:
    """Wizard steps whose effects are not documented: accept and change nothing."""
    return 202, None


ACTIONS: dict[str, Action] = {
    "POST /api/operation": stage_operation,
    "GET /api/config/completed": config_completed,
    "POST /api/sitemaster/stop": sitemaster_stop,
    "GET /api/sitemaster/stop": sitemaster_stop,
    "GET /api/sitemaster/run": sitemaster_run,
    "POST /api/sitemaster/run_for_commissioning": sitemaster_run,
    "POST /api/site_info/site_name": site_name,
    "POST /api/site_info/timezone": timezone,
    "POST /api/password/change": password_change,
    "POST /api/networks": add_network,
    "DELETE /api/networks": remove_network,
    "DELETE /api/networks/{network}/disconnect": set_network_flag("active", False),
    "POST /api/networks/{network}/enable": set_network_flag("enabled", True),
    "POST /api/networks/{network}/disable": set_network_flag("enabled", False),
    "POST /api/networks/connect": connect_network,
    "POST /api/networks/client_protocols": client_protocols,
    "POST /api/meters/{serial}/cts": set_cts,
    "DELETE /api/meters/{serial}/cts": clear_cts,
    "POST /api/meters/{serial}/ct_config": ct_config_post,
    "POST /api/meters/{serial}/invert_cts": meter_exists,
    "POST /api/meters/{serial}/commission": meter_exists,
    "POST /api/meters/{serial}/verify": meter_exists,
    "DELETE /api/meters/{serial}": meter_exists,
    "POST /api/customer/registration/legal": legal,
    "POST /api/customer/registration/skip": skip,
    "POST /api/customer/registration/emailed": skip,
    "POST /api/system/networks/conn_tests": conn_tests_start,
    "POST /api/system/testing/PINV_TEST": testing_start,
    "DELETE /api/system/testing": testing_clear,
    "POST /api/system/update": update_start,
    "POST /api/v2/islanding/mode": island,
    "POST /api/logging": logging,
}

__all__ = ["ACTIONS", "Action", "accepted"]
