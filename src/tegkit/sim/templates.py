"""Capture-shaped bodies (firmware 21.44 unless named) the simulator fills with live values.

Generated from vloschiavo-powerwall2/samples (Apache-2.0); long lists are cut to a few
entries and personal values replaced by examples. Builders copy these, never mutate them.
"""

from __future__ import annotations

from typing import Any

AUTH_TOGGLE_SUPPORTED: Any = {"toggle_auth_supported": True}


AUTOCONFIG_STATUS: Any = {
    "status": "not_applicable",
    "running": False,
    "retry_possible": False,
    "have_registered": False,
    "have_timezone": False,
    "have_gridcode": False,
    "grid_availability": "",
}


CUSTOMER: Any = {
    "marketing": True,
    "registered": True,
    "privacy_notice": True,
    "grid_services": True,
    "limited_warranty": True,
}


REGISTRATION: Any = {
    "privacy_notice": True,
    "limited_warranty": True,
    "grid_services": True,
    "marketing": True,
    "registered": True,
    "timed_out_registration": False,
}


DISCONNECT_TYPES: Any = ["DownstreamATS"]


GENERATORS: Any = {"disconnect_type": "None", "generators": []}


INSTALLER_COMPANIES: Any = [
    {
        "company": "0700 Inverters",
        "customer_id": "4aa029b9-98d8-423d-90e7-6dbce9661a44",
        "country": "GH",
    },
    {
        "company": "10hoch4 Energiesysteme GmbH",
        "customer_id": "e75a7f0f-2104-4451-85f8-addf0f74711b",
        "country": "AT",
    },
    {
        "company": "12-Gauge Electric, Inc.",
        "customer_id": "cbb8c5e8-b638-43cc-a6a6-ba33fac784e0",
        "country": "US",
    },
    {
        "company": "15 Lightyears",
        "customer_id": "c5ece5b6-58b7-4805-817f-a795e2b5553e",
        "country": "US",
    },
    {
        "company": "174 Power Global Corporation",
        "customer_id": "86383253-d093-4e16-8a99-84576f39dc31",
        "country": "US",
    },
]


INSTALLER: Any = {
    "company": "Clean Solar",
    "customer_id": "592ff91a-2372-46d5-85dd-35966a6ba1ae",
    "phone": "5555550100",
    "email": "installer@example.com",
    "location": "Outdoor",
    "mounting": "Floor",
    "wiring": "Side",
    "backup_configuration": "Partial Home",
    "solar_installation": "Existing",
    "solar_installation_type": "PV Panel",
    "has_cellular_modem_to_wifi": True,
    "run_sitemaster": True,
    "verified_config": True,
    "installation_types": ["Residential"],
}


METERS_STATUS: Any = {"status": "", "errors": None}


CLIENT_PROTOCOLS: Any = {
    "dnp3": False,
    "m2m": False,
    "mtls": False,
    "modbus": False,
    "allow_public_ip": False,
}


NETWORKS: Any = [
    {
        "network_name": "ethernet_tesla_internal_default",
        "interface": "EthType",
        "dhcp": True,
        "enabled": True,
        "extra_ips": [{"ip": "192.168.90.2", "netmask": 24}],
        "active": False,
        "primary": False,
        "lastTeslaConnected": False,
        "lastInternetConnected": False,
    },
    {
        "network_name": "gsm_tesla_internal_default",
        "interface": "GsmType",
        "dhcp": None,
        "enabled": True,
        "active": True,
        "primary": False,
        "lastTeslaConnected": False,
        "lastInternetConnected": False,
        "iface_network_info": {
            "network_name": "gsm_tesla_internal_default",
            "ip_networks": [{"ip": "192.168.1.50", "mask": "255.255.255.255"}],
            "gateway": "192.168.1.50",
            "interface": "GsmType",
            "state": "DeviceStateReady",
            "state_reason": "DeviceStateReasonNone",
            "signal_strength": 71,
            "hw_address": "",
        },
    },
    {
        "network_name": "HomeWifi",
        "interface": "WifiType",
        "security_type": "WPA2_Personal",
        "dhcp": True,
        "username": "",
        "enabled": True,
        "active": True,
        "primary": True,
        "lastTeslaConnected": True,
        "lastInternetConnected": True,
        "iface_network_info": {
            "network_name": "HomeWifi",
            "ip_networks": [{"ip": "192.168.1.50", "mask": "255.255.255.0"}],
            "gateway": "192.168.1.50",
            "interface": "WifiType",
            "state": "DeviceStateReady",
            "state_reason": "DeviceStateReasonNone",
            "signal_strength": 59,
            "hw_address": "02:00:00:00:00:01",
        },
    },
]


OPERATION: Any = {
    "real_mode": "autonomous",
    "backup_reserve_percent": 30,
    "freq_shift_load_shed_soe": 75,
    "freq_shift_load_shed_delta_f": -0.32,
}


OPERATION_LEGACY: Any = {"mode": "self_consumption", "backup_reserve_percent": 24.6}


POWERWALLS_HEAD: Any = {
    "enumerating": False,
    "updating": False,
    "checking_if_offgrid": False,
    "running_phase_detection": False,
    "phase_detection_last_error": "no phase information",
    "bubble_shedding": False,
    "on_grid_check_error": "run sitemanager flag enabled",
    "grid_qualifying": False,
    "grid_code_validating": False,
    "phase_detection_not_available": True,
    "gateway_din": "1232100-00-E--TG121000000000",
    "sync": {
        "updating": False,
        "commissioning_diagnostic": {
            "name": "Commissioning",
            "category": "InternalComms",
            "disruptive": False,
            "inputs": None,
            "checks": [
                {
                    "name": "CAN connectivity",
                    "status": "fail",
                    "start_time": "2021-12-26T13:09:23.624597253-07:00",
                    "end_time": "2021-12-26T13:09:23.624602753-07:00",
                    "message": "Cannot perform this action with "
                    "site controller running. From "
                    'landing page, either "STOP SYSTEM" '
                    'or "RUN WIZARD" to proceed.',
                    "results": {},
                    "debug": {},
                    "checks": None,
                },
                {
                    "name": "Firmware up-to-date",
                    "status": "fail",
                    "start_time": "2021-12-26T13:09:23.624607378-07:00",
                    "end_time": "2021-12-26T13:09:23.624611502-07:00",
                    "message": "Cannot perform this action with "
                    "site controller running. From "
                    'landing page, either "STOP SYSTEM" '
                    'or "RUN WIZARD" to proceed.',
                    "results": {},
                    "debug": {},
                    "checks": None,
                },
            ],
            "alert": False,
        },
        "update_diagnostic": {
            "name": "Firmware Update",
            "category": "InternalComms",
            "disruptive": True,
            "inputs": None,
            "checks": [
                {
                    "name": "Synchronizer firmware",
                    "status": "not_run",
                    "start_time": None,
                    "end_time": None,
                    "progress": 0,
                    "results": None,
                    "debug": None,
                    "checks": None,
                },
                {
                    "name": "Islanding configuration",
                    "status": "not_run",
                    "start_time": None,
                    "end_time": None,
                    "progress": 0,
                    "results": None,
                    "debug": None,
                    "checks": None,
                },
                {
                    "name": "Grid code",
                    "status": "not_run",
                    "start_time": None,
                    "end_time": None,
                    "progress": 0,
                    "results": None,
                    "debug": None,
                    "checks": None,
                },
            ],
            "alert": False,
        },
    },
    "msa": None,
    "states": None,
}


POWERWALL: Any = {
    "Type": "",
    "PackagePartNumber": "3012170-05-B",
    "PackageSerialNumber": "TG121000000001",
    "type": "ACPW",
    "grid_state": "Grid_Uncompliant",
    "grid_reconnection_time_seconds": 0,
    "under_phase_detection": False,
    "updating": False,
    "commissioning_diagnostic": {
        "name": "Commissioning",
        "category": "InternalComms",
        "disruptive": False,
        "inputs": None,
        "checks": [
            {
                "name": "CAN connectivity",
                "status": "fail",
                "start_time": "2021-12-26T13:09:23.62448801-07:00",
                "end_time": "2021-12-26T13:09:23.624493259-07:00",
                "message": "Cannot perform this action with site "
                "controller running. From landing page, "
                'either "STOP SYSTEM" or "RUN WIZARD" to '
                "proceed.",
                "results": {},
                "debug": {},
                "checks": None,
            },
            {
                "name": "Enable switch",
                "status": "fail",
                "start_time": "2021-12-26T13:09:23.624497884-07:00",
                "end_time": "2021-12-26T13:09:23.624502134-07:00",
                "message": "Cannot perform this action with site "
                "controller running. From landing page, "
                'either "STOP SYSTEM" or "RUN WIZARD" to '
                "proceed.",
                "results": {},
                "debug": {},
                "checks": None,
            },
            {
                "name": "Internal communications",
                "status": "fail",
                "start_time": "2021-12-26T13:09:23.624506384-07:00",
                "end_time": "2021-12-26T13:09:23.624510758-07:00",
                "message": "Cannot perform this action with site "
                "controller running. From landing page, "
                'either "STOP SYSTEM" or "RUN WIZARD" to '
                "proceed.",
                "results": {},
                "debug": {},
                "checks": None,
            },
            {
                "name": "Firmware up-to-date",
                "status": "fail",
                "start_time": "2021-12-26T13:09:23.624515008-07:00",
                "end_time": "2021-12-26T13:09:23.624519258-07:00",
                "message": "Cannot perform this action with site "
                "controller running. From landing page, "
                'either "STOP SYSTEM" or "RUN WIZARD" to '
                "proceed.",
                "results": {},
                "debug": {},
                "checks": None,
            },
        ],
        "alert": False,
    },
    "update_diagnostic": {
        "name": "Firmware Update",
        "category": "InternalComms",
        "disruptive": True,
        "inputs": None,
        "checks": [
            {
                "name": "Powerwall firmware",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "progress": 0,
                "results": None,
                "debug": None,
                "checks": None,
            },
            {
                "name": "Battery firmware",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "progress": 0,
                "results": None,
                "debug": None,
                "checks": None,
            },
            {
                "name": "Inverter firmware",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "progress": 0,
                "results": None,
                "debug": None,
                "checks": None,
            },
            {
                "name": "Grid code",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "progress": 0,
                "results": None,
                "debug": None,
                "checks": None,
            },
        ],
        "alert": False,
    },
    "bc_type": None,
    "in_config": True,
}


POWERWALLS_STATUS: Any = {
    "enumerating": False,
    "updating": False,
    "checking_if_offgrid": False,
    "running_phase_detection": False,
    "phase_detection_last_error": "no phase information",
    "bubble_shedding": False,
    "on_grid_check_error": "run sitemanager flag enabled",
    "grid_qualifying": False,
    "grid_code_validating": False,
    "phase_detection_not_available": True,
}


# samples/powerwalls.status.non-offgrid-capable.json: the older answer, no off-grid support.
POWERWALLS_STATUS_LEGACY: Any = {
    "enumerating": False,
    "updating": False,
    "checking_if_offgrid": False,
    "running_phase_detection": False,
    "phase_detection_last_error": "phase detection not run",
    "bubble_shedding": False,
    "on_grid_check_error": "on grid check not run",
    "grid_qualifying": False,
    "grid_code_validating": False,
    "phase_detection_not_available": True,
}


GRID_REGIONS: Any = {
    "regions": "grid_code,country,state,distributor,utility,retailer,standard\n"
    "60Hz_240V_s_IEEE1547_2003,Antigua and Barbuda,*,*,*,*,IEEE1547:2003\n"
    "60Hz_208V_1_IEEE1547_2003,Antigua and Barbuda,*,*,*,*,IEEE1547:2003 208V L-L\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,*,*,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,Australian Capital "
    "Territory,*,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,Australian Capital Territory,Essential "
    "Energy,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,Australian Capital Territory,Evoenergy / "
    "ActewAGL,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,New South Wales,*,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,New South "
    "Wales,Ausgrid,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,New South Wales,Endeavour "
    "Energy,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,New South Wales,Essential "
    "Energy,*,*,ASS4777.2:2015\n"
    "50Hz_230V_1_ASNZS4777.2:2015_AU,Australia,Northern Territory,*,*,*,ASS4777.2:2015\n",
    "grid_code_settings": {
        "50Hz_202V_s_JEAC9701_2019_Japan": {
            "grid_code": "50Hz_202V_s_JEAC9701_2019_Japan",
            "grid_voltage_setting": 202,
            "grid_freq_setting": 50,
            "grid_phase_setting": "Split",
            "grid_customizable_points": [
                {
                    "name": "vf_limit_under_voltage_1_grid_following",
                    "units": "V_pu",
                    "min": 0.8,
                    "max": 0.9,
                    "file_value": 0.8,
                    "override": None,
                    "value": 0.8,
                },
                {
                    "name": "vf_limit_over_voltage_1_grid_following",
                    "units": "V_pu",
                    "min": 1.1,
                    "max": 1.2,
                    "file_value": 1.15,
                    "override": None,
                    "value": 1.15,
                },
                {
                    "name": "vf_limit_under_frequency_1_grid_following",
                    "units": "Hz",
                    "min": 47.5,
                    "max": 49.5,
                    "file_value": 48.5,
                    "override": None,
                    "value": 48.5,
                },
                {
                    "name": "vf_limit_over_frequency_1_grid_following",
                    "units": "Hz",
                    "min": 50.5,
                    "max": 51.5,
                    "file_value": 51,
                    "override": None,
                    "value": 51,
                },
            ],
        },
        "50Hz_230V_1_ASNZS4777.2:2015_AU": {
            "grid_code": "50Hz_230V_1_ASNZS4777.2:2015_AU",
            "grid_voltage_setting": 230,
            "grid_freq_setting": 50,
            "grid_phase_setting": "Single",
        },
    },
}


SITE_INFO: Any = {
    "max_system_energy_kWh": 13.5,
    "max_system_power_kW": 5,
    "site_name": "Home Energy Gateway",
    "timezone": "America/Los_Angeles",
    "max_site_meter_power_kW": 1000000000,
    "min_site_meter_power_kW": -1000000000,
    "nominal_system_energy_kWh": 13.5,
    "nominal_system_power_kW": 5,
    "grid_code": {
        "grid_code": "60Hz_240V_s_UL1741SA:2019_California",
        "grid_voltage_setting": 240,
        "grid_freq_setting": 60,
        "grid_phase_setting": "Split",
        "country": "United States",
        "state": "California",
        "distributor": "*",
        "utility": "Pacific Gas and Electric Company",
        "retailer": "CleanPowerSF (CPSF)",
        "region": "UL1741SA-CA:2019",
    },
}


SITE_INFO_LEGACY: Any = {
    "max_site_meter_power_kW": 1000000000,
    "min_site_meter_power_kW": -1000000000,
    "nominal_system_energy_kWh": 13.5,
    "nominal_system_power_kW": 10,
    "site_name": "Loschiavo",
    "timezone": "America/Los_Angeles",
    "grid_code": "60Hz_240V_s_UL1741SA:2016_California",
    "grid_voltage_setting": 240,
    "grid_freq_setting": 60,
    "grid_phase_setting": "Split",
    "country": "United States",
    "state": "California",
    "distributor": "*",
    "utility": "Pacific Gas and Electric Company",
    "retailer": "*",
    "region": "UL1741SA",
}


SITEMASTER: Any = {
    "status": "StatusUp",
    "running": True,
    "connected_to_tesla": True,
    "power_supply_mode": False,
    "can_reboot": "Yes",
}


SOLAR_BRANDS: Any = [
    "ABB",
    "Ablerex Electronics",
    "Advanced Energy Industries",
    "Advanced Solar Photonics",
    "AE Solar Energy",
    "AEconversion Gmbh",
    "AEG Power Solutions",
    "Aero-Sharp",
    "Afore New Energy Technology Shanghai Co",
    "Agepower Limit",
    "Alpha ESS Co",
    "Alpha Technologies",
    "Altenergy Power System",
    "American Electric Technologies",
    "AMETEK Solidstate Control",
    "Andalay Solar",
    "Apparent",
    "Asian Power Devices",
    "AU Optronics",
    "Auxin Solar",
    "Ballard Power Systems",
    "Beacon Power",
    "Beijing Hua Xin Liu He Investment (Australia) Pty",
    "Beijing Kinglong New Energy",
    "Bergey Windpower",
]


SOLARS: Any = [
    {"brand": "Enphase Energy", "model": "IQ7PLUS-72-x-US (240V)", "power_rating_watts": 5250}
]


STATUS: Any = {
    "din": "1232100-00-E--TG121000000000",
    "start_time": "2021-12-16 22:13:25 +0800",
    "up_time_seconds": "230h55m59.932079901s",
    "is_new": False,
    "version": "21.44 223a56cd",
    "git_hash": "223a56cd575b7b19bad7e12a4ebad0eb52d1f50a",
    "commission_count": 11,
    "device_type": "teg",
    "sync_type": "v2.1",
    "leader": "",
    "followers": None,
    "cellular_disabled": False,
}


CT_VOLTAGE_REFERENCES: Any = {"ct1": "Phase1", "ct2": "Phase2", "ct3": "Phase1"}


CT_VOLTAGE_REFERENCE_OPTIONS: Any = {
    "ct1": ["Phase1"],
    "ct2": ["Phase2"],
    "ct3": ["Phase1", "Phase2"],
}


CONN_TESTS_IDLE: Any = {
    "name": "Network connection",
    "category": "Network",
    "disruptive": False,
    "inputs": None,
    "checks": [
        {
            "name": "Network device",
            "status": "not_run",
            "start_time": None,
            "end_time": None,
            "results": None,
            "debug": None,
            "checks": None,
        }
    ],
    "alert": False,
}


CONN_TESTS_POST: Any = [
    {
        "name": "CAN bus",
        "category": "InternalComms",
        "disruptive": False,
        "inputs": None,
        "checks": [
            {
                "name": "Enable switch",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "results": None,
                "debug": None,
                "checks": None,
            }
        ],
        "alert": False,
    },
    {
        "name": "Meter communication",
        "category": "Metering",
        "disruptive": False,
        "inputs": None,
        "checks": [
            {
                "name": "Meter read",
                "status": "not_run",
                "start_time": None,
                "end_time": None,
                "results": None,
                "debug": None,
                "checks": None,
            }
        ],
        "alert": False,
    },
    {
        "name": "Network connection",
        "category": "Network",
        "disruptive": False,
        "inputs": None,
        "checks": [
            {
                "name": "Network device",
                "status": "scheduled",
                "start_time": None,
                "end_time": None,
                "results": {},
                "debug": {},
                "checks": None,
            }
        ],
        "alert": False,
    },
]


CONN_TESTS_DONE: Any = {
    "name": "Network connection",
    "category": "Network",
    "disruptive": False,
    "inputs": None,
    "checks": [
        {
            "name": "Network device",
            "status": "pass",
            "start_time": "2023-03-31T15:42:15.448910471+01:00",
            "end_time": "2023-03-31T15:42:15.700189504+01:00",
            "results": {},
            "debug": {},
            "checks": None,
        },
        {
            "name": "IP address",
            "status": "pass",
            "start_time": "2023-03-31T15:42:15.700185837+01:00",
            "end_time": "2023-03-31T15:42:15.783385294+01:00",
            "results": None,
            "debug": None,
            "checks": None,
        },
        {
            "name": "Tesla and internet connectivity",
            "status": "running",
            "start_time": "2023-03-31T15:42:15.783382294+01:00",
            "end_time": None,
            "results": None,
            "debug": None,
            "checks": None,
        },
    ],
    "alert": False,
}


PING_TEST: Any = {"Error": {}}


SYSTEM_TESTING: Any = {
    "running": False,
    "status": "TestNotRun",
    "charge_tests": None,
    "meter_results": None,
    "inverter_results": None,
    "hysteresis": 0,
    "error": "",
    "errors": None,
    "tests": None,
}


UPDATE_STATUS: Any = {
    "state": "/update_succeeded",
    "info": {"status": ["nonactionable"]},
    "current_time": 1640549366145,
    "last_status_time": 1640546006659,
    "version": "21.44 223a56cd",
    "offline_updating": False,
    "offline_update_error": "",
    "estimated_bytes_per_second": None,
}


GRID_STATUS: Any = {"grid_status": "SystemGridConnected", "grid_services_active": False}


SYSTEM_STATUS: Any = {
    "command_source": "Configuration",
    "battery_target_power": -65.5,
    "battery_target_reactive_power": 0,
    "nominal_full_pack_energy": 14061,
    "nominal_energy_remaining": 5964,
    "max_power_energy_remaining": 0,
    "max_power_energy_to_be_charged": 0,
    "max_charge_power": 5000,
    "max_discharge_power": 5000,
    "max_apparent_power": 5000,
    "instantaneous_max_discharge_power": 12000,
    "instantaneous_max_charge_power": 5290,
    "grid_services_power": 0,
    "system_island_state": "SystemGridConnected",
    "available_blocks": 1,
    "ffr_power_availability_high": 5800,
    "ffr_power_availability_low": 5290,
    "load_charge_constraint": 0,
    "max_sustained_ramp_rate": 1250000,
    "grid_faults": [],
    "can_reboot": "Yes",
    "smart_inv_delta_p": 0,
    "smart_inv_delta_q": 0,
    "last_toggle_timestamp": "2021-12-16T22:17:15.683707425-07:00",
    "solar_real_power_limit": -1,
    "score": 10000,
    "blocks_controlled": 1,
    "primary": True,
    "auxiliary_load": 0,
    "all_enable_lines_high": True,
    "inverter_nominal_usable_power": 5800,
    "expected_energy_remaining": 0,
}


BATTERY_BLOCK: Any = {
    "Type": "",
    "PackagePartNumber": "3012170-05-B",
    "PackageSerialNumber": "TG121000000001",
    "disabled_reasons": [],
    "pinv_state": "PINV_GridFollowing",
    "pinv_grid_state": "Grid_Compliant",
    "nominal_energy_remaining": 5964,
    "nominal_full_pack_energy": 14061,
    "p_out": -70,
    "q_out": 30,
    "v_out": 246.9,
    "f_out": 60.007000000000005,
    "i_out": 1.1,
    "energy_charged": 642500,
    "energy_discharged": 567740,
    "off_grid": False,
    "vf_mode": False,
    "wobble_detected": False,
    "charge_power_clamped": False,
    "backup_ready": True,
    "OpSeqState": "Active",
    "version": "223a56cd575b7b",
}


PROBLEMS: Any = {"problems": []}


AGGREGATE_METER: Any = {
    "last_communication_time": "2021-12-26T13:09:22.321056599-07:00",
    "instant_power": 72,
    "instant_reactive_power": -329,
    "instant_apparent_power": 336.7862823809782,
    "frequency": 0,
    "energy_exported": 348463.5610710742,
    "energy_imported": 752045.9551097859,
    "instant_average_voltage": 213.65712736765886,
    "instant_average_current": 0,
    "i_a_current": 0,
    "i_b_current": 0,
    "i_c_current": 0,
    "last_phase_voltage_communication_time": "0001-01-01T00:00:00Z",
    "last_phase_power_communication_time": "0001-01-01T00:00:00Z",
    "last_phase_energy_communication_time": "0001-01-01T00:00:00Z",
    "timeout": 1500000000,
    "num_meters_aggregated": 2,
    "instant_total_current": 0,
}


AGGREGATE_METER_LEGACY: Any = {
    "last_communication_time": "2018-04-02T16:11:41.885377469-07:00",
    "instant_power": -21.449996948242188,
    "instant_reactive_power": -138.8300018310547,
    "instant_apparent_power": 140.47729986545957,
    "frequency": 60.060001373291016,
    "energy_exported": 1136916.6875890202,
    "energy_imported": 3276432.6625890196,
    "instant_average_voltage": 239.81999969482422,
    "instant_total_current": 0,
    "i_a_current": 0,
    "i_b_current": 0,
    "i_c_current": 0,
}


AGGREGATE_METER_IDLE: Any = {
    "last_communication_time": "0001-01-01T00:00:00Z",
    "instant_power": 0,
    "instant_reactive_power": 0,
    "instant_apparent_power": 0,
    "frequency": 0,
    "energy_exported": 0,
    "energy_imported": 0,
    "instant_average_voltage": 0,
    "instant_total_current": 0,
    "i_a_current": 0,
    "i_b_current": 0,
    "i_c_current": 0,
}


METERS: Any = [
    {
        "serial": "OBB0000000000synchrometerY",
        "short_id": "1232100-00-E--TG121000000000",
        "type": "synchrometerY",
        "cts": [
            {
                "type": "site",
                "valid": [True, True, False, False],
                "inverted": [False, False, False, False],
                "real_power_scale_factor": 1,
            },
            {
                "type": "solar",
                "valid": [False, False, True, False],
                "inverted": [False, False, False, False],
                "real_power_scale_factor": 2,
            },
        ],
    },
    {
        "serial": "OBB0000000000synchrometerX",
        "short_id": "1232100-00-E--TG121000000000",
        "type": "synchrometerX",
        "cts": [
            {
                "type": "site",
                "valid": [True, True, False, False],
                "inverted": [False, False, False, False],
                "real_power_scale_factor": 1,
            }
        ],
    },
]


CTS: Any = {
    "synchrometerY": [
        {
            "type": "site",
            "valid": [True, True, False, False],
            "inverted": [False, False, False, False],
            "real_power_scale_factor": 1,
        },
        {
            "type": "solar",
            "valid": [False, False, True, False],
            "inverted": [False, False, False, False],
            "real_power_scale_factor": 2,
        },
    ],
    "synchrometerX": [
        {
            "type": "site",
            "valid": [True, True, False, False],
            "inverted": [False, False, False, False],
            "real_power_scale_factor": 1,
        }
    ],
}


METER_READINGS_ENTRY: Any = {
    "error": "",
    "data": {
        "firmwareVersion": "223a56cd575b7b",
        "cts": [
            {"ct": 1, "v_V": 122.53, "p_W": 467, "q_VAR": -326, "eExp_Ws": 0, "eImp_Ws": 0},
            {"ct": 2, "v_V": 124.24, "p_W": -486, "q_VAR": -61, "eExp_Ws": 0, "eImp_Ws": 0},
            {"ct": 3, "v_V": 0, "p_W": 0, "q_VAR": 0, "eExp_Ws": 0, "eImp_Ws": 0},
            {"ct": 0, "v_V": 0, "p_W": 0, "q_VAR": 0, "eExp_Ws": 0, "eImp_Ws": 0},
        ],
    },
}


LEGAL_RADIO: Any = [
    {
        "manufacturer": "Telit",
        "model": "HE910-D",
        "fcc_id": "2AEIM-1234567",
        "ic_id": "20098-1234567",
    },
    {
        "manufacturer": "Redpine",
        "model": "RS9113DB",
        "fcc_id": "2AEIM-1234567",
        "ic_id": "20098-1234567",
    },
]


ACCESS_POINTS: Any = [
    {
        "ssid": "Neighbour",
        "bssid": "02:00:00:00:00:01",
        "channel": 11,
        "signal_strength": 75,
        "security_type": "WPA2_Personal",
    },
    {
        "ssid": "Neighbour",
        "bssid": "02:00:00:00:00:01",
        "channel": 1,
        "signal_strength": 67,
        "security_type": "WPA2_Personal",
    },
    {
        "ssid": "Neighbour",
        "bssid": "02:00:00:00:00:01",
        "channel": 1,
        "signal_strength": 65,
        "security_type": "WPA2_Personal",
    },
]


PVI_SUB_PACKAGE_NUMBERS: Any = {"pvi_sub_package_numbers": [None]}


GRID_CODES: Any = {
    "Australia": {
        "*": {
            "ASS4777.2": [
                {
                    "grid_code": "50Hz_230V_1_ASNZS4777.2:2015_AU",
                    "grid_voltage_setting": 230,
                    "grid_freq_setting": 50,
                    "grid_phase_setting": "Single",
                }
            ]
        }
    },
    "Germany": {
        "*": {
            "VDE4105": [
                {
                    "grid_code": "50Hz_230V_1_VDE4105:2011_Germany",
                    "grid_voltage_setting": 230,
                    "grid_freq_setting": 50,
                    "grid_phase_setting": "Single",
                }
            ]
        }
    },
}


SOLAR_MODELS: Any = [
    {
        "brand": "SolarEdge Technologies",
        "model": "SE 10000A-US (208V)",
        "description": "10 kW 1-Phase (208Vac) Utility Interactive Inverter",
        "power_rating_watts": 9930,
    },
    {
        "brand": "SolarEdge Technologies",
        "model": "SE 10000A-US (240V)",
        "description": "10 kW 1-Phase (240Vac) Utility Interactive Inverter",
        "power_rating_watts": 9940,
    },
    {
        "brand": "SolarEdge Technologies",
        "model": "SE 10000A-US (277V)",
        "description": "10 kW 1-Phase (277Vac) Utility Interactive Inverter",
        "power_rating_watts": 9950,
    },
]


METER_DETAILS: Any = [
    {
        "id": 0,
        "location": "site",
        "type": "neurio_tcp",
        "cts": [True, True, False, False],
        "inverted": [False, False, False, False],
        "connection": {
            "ip_address": "Neurio-39546",
            "port": 443,
            "short_id": "39546",
            "device_serial": "OBB3364102752",
            "neurio_connected": True,
            "https_conf": {
                "client_cert": "/etc/site/certs/neurio/neurio.crt",
                "client_key": "/etc/site/certs/neurio/neurio.key",
                "server_ca_cert": "/etc/site/certs/neurio/neurio-ca-chain.cert.pem",
                "max_idle_conns_per_host": 1,
            },
        },
        "Cached_readings": {
            "last_communication_time": "2018-06-10T16:51:46.187715089+01:00",
            "instant_power": 13.94000026769936,
            "instant_reactive_power": 14.070000305771828,
            "instant_apparent_power": 19.80627466405224,
            "frequency": 49.95000076293945,
            "energy_exported": 3724.253888912031,
            "energy_imported": 26003.843888912033,
            "instant_average_voltage": 247.52999755740166,
            "instant_total_current": 0,
            "i_a_current": 0,
            "i_b_current": 0,
            "i_c_current": 0,
            "v_l1n": 247.3300018310547,
            "v_l2n": 0.2199999988079071,
            "serial_number": "0x000004714B008720",
            "version": "Tesla-0.0.7",
        },
    }
]


METER_DETAILS_SOLAR: Any = [
    {
        "id": 0,
        "location": "solar",
        "type": "neurio_tcp",
        "cts": [False, False, False, True],
        "inverted": [False, False, False, False],
        "connection": {
            "ip_address": "Neurio-39546",
            "port": 443,
            "short_id": "39546",
            "device_serial": "OBB3364102752",
            "neurio_connected": True,
            "https_conf": {
                "client_cert": "/etc/site/certs/neurio/neurio.crt",
                "client_key": "/etc/site/certs/neurio/neurio.key",
                "server_ca_cert": "/etc/site/certs/neurio/neurio-ca-chain.cert.pem",
                "max_idle_conns_per_host": 1,
            },
        },
        "Cached_readings": {
            "last_communication_time": "2018-06-10T16:52:57.788560639+01:00",
            "instant_power": 318.8599853515625,
            "instant_reactive_power": 129.94000244140625,
            "instant_apparent_power": 344.3197561756678,
            "frequency": 49.95000076293945,
            "energy_exported": 3.8174999999938235,
            "energy_imported": 125317.00444444444,
            "instant_average_voltage": 246.82000732421875,
            "instant_total_current": 0,
            "i_a_current": 0,
            "i_b_current": 0,
            "i_c_current": 0,
            "v_l1n": 246.8800048828125,
            "serial_number": "0x000004714B008720",
            "version": "Tesla-0.0.7",
        },
    }
]


LOGIN_RESPONSE: Any = {
    "email": "",
    "firstname": "Tesla",
    "lastname": "Energy",
    "roles": ["Home_Owner"],
    "token": "x4jbH...XMP8w==",
    "provider": "Basic",
    "loginTime": "2023-03-25T13:10:48.9029581+01:00",
}
