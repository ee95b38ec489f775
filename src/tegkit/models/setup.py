"""Setup and wizard models: login, customer, installer, meters, networks, solar, tests, updates."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from tegkit.models._base import UNSET, Model, Part, UnsetType, field
from tegkit.models.live import MeterAggregate

__all__ = [
    "AccessPoint",
    "AccessPoints",
    "AuthToggleSupported",
    "AutoconfigStatus",
    "ClientProtocols",
    "Config",
    "CtReading",
    "CtVoltageReferenceOptions",
    "CtVoltageReferences",
    "Customer",
    "CustomerRegistration",
    "DisconnectTypes",
    "ExtraIp",
    "Generators",
    "IfaceNetworkInfo",
    "Installer",
    "InstallerCompanies",
    "InstallerCompany",
    "IpNetwork",
    "IslandMode",
    "IslandingMode",
    "LegalRadio",
    "LoginResponse",
    "Meter",
    "MeterConnection",
    "MeterCt",
    "MeterCts",
    "MeterDetail",
    "MeterDetails",
    "MeterReading",
    "MeterReadingData",
    "MeterReadings",
    "MeterTestResult",
    "Meters",
    "MetersStatus",
    "Network",
    "Networks",
    "PasswordChange",
    "PingTest",
    "PviSubPackageNumbers",
    "RadioModule",
    "Solar",
    "SolarBrands",
    "SolarModels",
    "Solars",
    "SystemTesting",
    "TroubleshootingProblems",
    "UpdateInfo",
    "UpdateState",
    "UpdateStatus",
    "WifiSecurityTypes",
]

_HIDDEN = "'***'"


# --- session -------------------------------------------------------------------------------


class LoginResponse(Model, kw_only=True):
    """POST /api/login/Basic: who logged in and the session token (never shown in repr)."""

    token: str
    email: str | UnsetType | None = UNSET  # null on legacy firmware
    firstname: str | None = None
    lastname: str | None = None
    roles: list[str] | None = None
    provider: str | None = None
    login_time: dt.datetime | None = field(default=None, name="loginTime")

    def __repr__(self) -> str:
        return (
            f"LoginResponse(token={_HIDDEN}, email={self.email!r}, roles={self.roles!r}, "
            f"provider={self.provider!r}, login_time={self.login_time!r})"
        )


class PasswordChange(Model, kw_only=True):
    """POST /api/password/change: the new password, echoed (never shown in repr)."""

    password: str | None = None

    def __repr__(self) -> str:
        return f"PasswordChange(password={_HIDDEN})"


class AuthToggleSupported(Model, kw_only=True):
    """GET /api/auth/toggle/supported (false while the system is stopped)."""

    toggle_auth_supported: bool


# --- customer and installer -------------------------------------------------------------


class Config(Model, kw_only=True):
    """GET /api/config: only the gateway's VIN is known."""

    vin: str | None = None


class Customer(Model, kw_only=True):
    """GET /api/customer: registration and consents (older firmware: the address too)."""

    registered: bool | None = None
    marketing: bool | UnsetType | None = UNSET
    privacy_notice: bool | UnsetType | None = UNSET
    grid_services: bool | UnsetType | None = UNSET
    limited_warranty: bool | UnsetType | None = UNSET
    emailed_registration: bool | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None


class CustomerRegistration(Model, kw_only=True):
    """GET /api/customer/registration: registration and legal consents."""

    registered: bool | None = None
    privacy_notice: bool | UnsetType | None = UNSET
    limited_warranty: bool | UnsetType | None = UNSET
    grid_services: bool | UnsetType | None = UNSET
    marketing: bool | UnsetType | None = UNSET
    timed_out_registration: bool | None = None
    emailed_registration: bool | None = None


class Installer(Model, kw_only=True):
    """GET /api/installer: installer company and installation details."""

    company: str | None = None
    customer_id: str | None = None
    phone: str | None = None
    email: str | None = None
    location: str | None = None
    mounting: str | None = None
    wiring: str | None = None
    backup_configuration: str | None = None
    solar_installation: str | None = None
    solar_installation_type: str | None = None
    has_cellular_modem_to_wifi: bool | None = None
    run_sitemaster: bool | None = None
    verified_config: bool | None = None
    installation_types: list[str] | None = None


class InstallerCompany(Part, kw_only=True):
    company: str
    customer_id: str | None = None
    country: str | None = None


InstallerCompanies = list[InstallerCompany]


# --- meters ---------------------------------------------------------------------------------


class MeterCt(Part, kw_only=True):
    """The CT configuration of one meter location: which of its CTs are used and inverted."""

    type: str  # "site", "solar", ...
    valid: list[bool] | None = None
    inverted: list[bool] | None = None
    real_power_scale_factor: float | None = None


MeterCts = list[MeterCt]


class Meter(Part, kw_only=True):
    """One meter of /api/meters."""

    serial: str
    short_id: str | None = None
    type: str | None = None  # "synchrometerX", "neurio_tcp", ...
    connected: bool | None = None
    cts: list[MeterCt] | None = None
    ip_address: str | None = None
    mac: str | None = None


Meters = list[Meter]


class CtReading(Part, kw_only=True):
    """One CT of /api/meters/readings. Energies are in watt-seconds, as sent."""

    ct: int
    v_v: float | None = field(default=None, name="v_V")
    p_w: float | None = field(default=None, name="p_W")
    q_var: float | None = field(default=None, name="q_VAR")
    i_a: float | None = field(default=None, name="i_A")
    e_exp_ws: float | None = field(default=None, name="eExp_Ws")
    e_imp_ws: float | None = field(default=None, name="eImp_Ws")

    @property
    def e_exp_wh(self) -> float | None:
        return None if self.e_exp_ws is None else self.e_exp_ws / 3600.0

    @property
    def e_imp_wh(self) -> float | None:
        return None if self.e_imp_ws is None else self.e_imp_ws / 3600.0


class MeterReadingData(Part, kw_only=True):
    firmware_version: str | None = field(default=None, name="firmwareVersion")
    ip: str | None = field(default=None, name="IP")
    sensor_id: str | None = field(default=None, name="sensorId")
    f_hz: float | None = field(default=None, name="f_Hz")
    cts: list[CtReading] | None = None


class MeterReading(Part, kw_only=True):
    """The readings of one meter; `error` is non-empty when they could not be read."""

    error: str | None = None
    data: MeterReadingData | None = None


# /api/meters/readings: meter serial -> readings.
MeterReadings = dict[str, MeterReading]


class MetersStatus(Model, kw_only=True):
    """GET /api/meters/status."""

    status: str | None = None
    errors: list[Any] | UnsetType | None = UNSET


class MeterConnection(Part, kw_only=True):
    ip_address: str | None = None
    port: int | None = None
    short_id: str | None = None
    device_serial: str | None = None
    neurio_connected: bool | None = None
    https_conf: dict[str, Any] | None = None


class MeterDetail(Part, kw_only=True):
    """One meter of /api/meters/site or /api/meters/solar, with its cached readings."""

    id: int | None = None
    location: str | None = None
    type: str | None = None
    cts: list[bool] | None = None
    inverted: list[bool] | None = None
    connection: MeterConnection | None = None
    cached_readings: MeterAggregate | None = field(default=None, name="Cached_readings")


MeterDetails = list[MeterDetail]


class CtVoltageReferences(Model, kw_only=True):
    """GET /api/synchrometer/ct_voltage_references: the phase each CT measures against."""

    ct1: str | None = None
    ct2: str | None = None
    ct3: str | None = None


class CtVoltageReferenceOptions(Model, kw_only=True):
    """GET /api/synchrometer/ct_voltage_references/options: phases each CT may pair with."""

    ct1: list[str] | None = None
    ct2: list[str] | None = None
    ct3: list[str] | None = None


# --- networks -----------------------------------------------------------------------------


class ExtraIp(Part, kw_only=True):
    ip: str | None = None
    netmask: int | None = None  # prefix length


class IpNetwork(Part, kw_only=True):
    ip: str | None = None
    mask: str | None = None


class IfaceNetworkInfo(Part, kw_only=True):
    network_name: str | None = None
    ip_networks: list[IpNetwork] | None = None
    gateway: str | None = None
    interface: str | None = None
    state: str | None = None
    state_reason: str | None = None
    signal_strength: int | None = None  # unit not documented (0..100 seen)
    hw_address: str | None = None


class Network(Part, kw_only=True):
    """One network of /api/networks. The oldest firmware (spec 001) used id/name/connected."""

    network_name: str | None = None
    interface: str | None = None  # "EthType", "WifiType", "GsmType"
    security_type: str | None = None
    dhcp: bool | UnsetType | None = UNSET
    username: str | None = None
    enabled: bool | None = None
    extra_ips: list[ExtraIp] | None = None
    active: bool | None = None
    primary: bool | None = None
    last_tesla_connected: bool | None = field(default=None, name="lastTeslaConnected")
    last_internet_connected: bool | None = field(default=None, name="lastInternetConnected")
    iface_network_info: IfaceNetworkInfo | None = None
    # Oldest shape
    id: int | None = None
    name: str | None = None
    connected: bool | None = None
    is_dhcp: bool | None = None
    ip_address: str | None = None
    subnet: str | None = None
    config: dict[str, Any] | UnsetType | None = UNSET


Networks = list[Network]


class ClientProtocols(Model, kw_only=True):
    """GET /api/networks/client_protocols: which client protocols are enabled."""

    dnp3: bool | None = None
    m2m: bool | None = None
    mtls: bool | None = None
    modbus: bool | None = None
    allow_public_ip: bool | None = None


class AccessPoint(Part, kw_only=True):
    ssid: str | None = None
    bssid: str | None = None
    channel: int | None = None
    signal_strength: int | None = None
    security_type: str | None = None


AccessPoints = list[AccessPoint]
WifiSecurityTypes = list[str]


class PingTest(Model, kw_only=True):
    """GET /api/system/networks/ping_test: only {"Error": {}} has been captured."""

    error: dict[str, Any] | None = field(default=None, name="Error")


# --- solar, generators, radio -------------------------------------------------------------


class Solar(Part, kw_only=True):
    """A solar inverter: configured (/api/solars) or offered for a brand (/brands/{brand})."""

    brand: str | None = None
    model: str | None = None
    description: str | None = None
    power_rating_w: float | None = field(default=None, name="power_rating_watts")


Solars = list[Solar]
SolarModels = list[Solar]
SolarBrands = list[str]


class Generators(Model, kw_only=True):
    """GET /api/generators: generators (shape unknown: none captured) and disconnect type."""

    disconnect_type: str | None = None
    generators: list[Any] | None = None


DisconnectTypes = list[str]


class RadioModule(Part, kw_only=True):
    manufacturer: str | None = None
    model: str | None = None
    fcc_id: str | None = None
    ic_id: str | None = None


LegalRadio = list[RadioModule]


class PviSubPackageNumbers(Model, kw_only=True):
    """GET /api/powerwalls/pvi_sub_package_numbers (entries may be null)."""

    pvi_sub_package_numbers: list[str | None] | None = None


# --- tests, updates, problems, autoconfig, islanding -------------------------------------


class MeterTestResult(Part, kw_only=True):
    power_w: float | None = field(default=None, name="Power")
    ct: int | None = field(default=None, name="CT")
    serial: str | None = field(default=None, name="Serial")
    type: str | None = field(default=None, name="Type")


class SystemTesting(Model, kw_only=True):
    """GET /api/system/testing: charge and meter test results."""

    running: bool | None = None
    status: str | None = None  # "TestNotRun", "TestPassed", ...
    charge_tests: list[float] | UnsetType | None = UNSET  # target powers, W
    meter_results: list[list[MeterTestResult]] | UnsetType | None = UNSET
    inverter_results: Any | UnsetType = UNSET
    hysteresis: float | None = None
    error: str | None = None
    errors: Any | UnsetType = UNSET
    tests: Any | UnsetType = UNSET


class UpdateState:
    """Known values of UpdateStatus.state (others are kept as sent)."""

    CHECKING: Final = "/clear_update_status"
    SUCCEEDED: Final = "/update_succeeded"
    FAILED: Final = "/update_failed"  # or not required
    STAGED: Final = "/update_staged"
    DOWNLOADING: Final = "/download"
    DOWNLOADED: Final = "/update_downloaded"
    UNKNOWN: Final = "/update_unknown"
    KNOWN: Final = (CHECKING, SUCCEEDED, FAILED, STAGED, DOWNLOADING, DOWNLOADED, UNKNOWN)


class UpdateInfo(Part, kw_only=True):
    status: list[str] | None = None  # "nonactionable", "ignoring", "error"


class UpdateStatus(Model, kw_only=True):
    """GET /api/system/update/status: firmware update state."""

    state: str  # UpdateState
    info: UpdateInfo | None = None
    current_time_ms: int | None = field(default=None, name="current_time")
    last_status_time_ms: int | None = field(default=None, name="last_status_time")
    version: str | None = None
    offline_updating: bool | None = None
    offline_update_error: str | None = None
    estimated_bytes_per_second: float | UnsetType | None = UNSET


class TroubleshootingProblems(Model, kw_only=True):
    """GET /api/troubleshooting/problems (only empty lists captured)."""

    problems: list[Any] | None = None


class AutoconfigStatus(Model, kw_only=True):
    """GET /api/autoconfig/status."""

    status: str | None = None
    running: bool | None = None
    retry_possible: bool | None = None
    have_registered: bool | None = None
    have_timezone: bool | None = None
    have_gridcode: bool | None = None
    grid_availability: str | None = None


class IslandMode:
    """Known values of island_mode (others are kept as sent)."""

    BACKUP: Final = "backup"  # on grid
    INTENTIONAL_RECONNECT_FAILSAFE: Final = "intentional_reconnect_failsafe"  # off grid
    OFF_GRID_INTENTIONAL: Final = "off_grid_intentional"
    KNOWN: Final = (BACKUP, INTENTIONAL_RECONNECT_FAILSAFE, OFF_GRID_INTENTIONAL)


class IslandingMode(Model, kw_only=True):
    """POST /api/v2/islanding/mode: the island mode now requested."""

    island_mode: str
