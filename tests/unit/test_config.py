import contextlib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordings_service.config import load_config
from recordings_service.errors import ConfigError


def test_shipped_defaults_hold_the_purposes_of_the_register() -> None:
    config = load_config(environ={})
    assert set(config.purposes) == {"service_verification", "legal_protection", "training",
                                    "quality_review", "fraud_prevention", "security",
                                    "accounting_record"}
    assert config.purposes["accounting_record"].retention_months == 120
    assert config.purposes["training"].access_roles == {"supervisor", "agent"}
    assert config.port == 8080 and config.host == "127.0.0.1"
    assert config.max_upload_bytes == 2 * 1024**3
    assert config.workers == 1


def test_operator_file_environment_and_flags_in_that_order(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[server]\nport = 9000\n[purposes.training]\nretention_months = 3\n'
                    'legal_basis = "consent"\naccess_roles = ["supervisor"]\n')
    config = load_config(file, environ={"RECORDINGS_HOST": "0.0.0.0"})
    assert config.port == 9000 and config.host == "0.0.0.0"
    assert config.purposes["training"].retention_months == 3
    assert config.purposes["legal_protection"].retention_months == 36
    flagged = load_config(file, environ={"RECORDINGS_PORT": "9100"}, port="9200")
    assert flagged.port == 9200


def test_database_url_is_masked_in_repr() -> None:
    config = load_config(environ={"RECORDINGS_DATABASE_URL": "postgresql://u:hunter2@db/x"})
    assert "hunter2" not in repr(config)
    assert config.database_url.reveal().endswith("@db/x")


@pytest.mark.parametrize("text", [
    "[limits]\nmax_upload_bytes = -1\n",
    "[limits]\nmax_upload_bytes = \"big\"\n",
    "[purposes.x]\nlegal_basis = \"whim\"\nretention_months = 1\n",
    "[purposes.x]\nlegal_basis = \"consent\"\nretention_months = 1\naccess_roles = [\"root\"]\n",
    "not toml at all [",
    "[server]\nworkers = 0\n",
    "[server]\nworkers = \"many\"\n",
    "[server]\ntrusted_proxies = [\"not an address\"]\n",
    "[server]\ntrusted_proxies = [10]\n",
    "[server]\ntrusted_proxies = \"10.0.0.1\"\n",
    "[storage.s3]\ntimeout_seconds = 0\n",
    "[storage.s3]\ntimeout_seconds = \"long\"\n",
    "[limits]\nmax_uploads_per_client = 0\n",
    "[limits]\nbody_min_bytes_per_second = -1\n",
    "[audit]\ncheckpoint_max_delay_seconds = 0\n",
])
def test_invalid_configuration_is_refused_at_start(tmp_path: Path, text: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError):
        load_config(file, environ={})


@pytest.mark.parametrize(("text", "named"), [
    ("[sever]\nport = 8081\n", "[sever]"),
    ("[server]\nprot = 8081\n", "[server] prot"),
    ("[purposes.training]\nretention_month = 3\n", "retention_month"),
    ("[limits]\nmax_upload_byte = 5\n", "max_upload_byte"),
    ("server = 5\n", "[server]"),
    ("[server]\nport = \"8081\"\n", "[server] port must be an integer"),
    ("[scheduler]\nenabled = \"yes\"\n", "[scheduler] enabled must be true or false"),
    ("[server]\nevent_loop = \"trio\"\n", "[server] event_loop must be 'asyncio' or 'uvloop'"),
])
def test_typos_and_wrong_types_stop_the_start_naming_the_key(
        tmp_path: Path, text: str, named: str) -> None:
    file = tmp_path / "typo.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(file, environ={})
    assert named in str(raised.value)


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.floats()), max_size=3),
    max_size=3))
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_operator_file_loads_or_is_refused_with_a_config_error(
        tmp_path: Path, tables: dict[str, dict[str, object]]) -> None:
    file = tmp_path / "any.toml"
    file.write_text(tomli_w.dumps(tables))
    with contextlib.suppress(ConfigError):
        load_config(file, environ={})


@pytest.mark.parametrize(("text", "environ", "message"), [
    ('[keys.pkcs11]\nmodul = "/x.so"\n', {}, r"unknown key \[keys.pkcs11\] modul"),
    ('[keys]\nbackend = "vault"\n', {}, "backend must be 'file' or 'pkcs11'"),
    ('[keys]\nbackend = "pkcs11"\n[keys.pkcs11]\nmodule = "/x.so"\ntoken_label = "t"\n',
     {}, "RECORDINGS_PKCS11_PIN"),
    ('[keys]\nbackend = "pkcs11"\n', {"RECORDINGS_PKCS11_PIN": "1"},
     r"\[keys.pkcs11\] module must be set"),
])
def test_key_custody_settings_are_checked(tmp_path: Path, text: str,
                                          environ: dict[str, str], message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ=environ)


def test_the_pin_is_masked_and_the_root_key_file_may_be_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[keys]\nbackend = "pkcs11"\nroot_key_file = "/etc/rec/root.key"\n'
                    '[keys.pkcs11]\nmodule = "/x.so"\ntoken_label = "t"\n')
    config = load_config(path, environ={"RECORDINGS_PKCS11_PIN": "secret-pin"})
    assert "secret-pin" not in repr(config)
    assert config.pkcs11_pin.reveal() == "secret-pin"
    assert str(config.root_key_path) == "/etc/rec/root.key"


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path) -> None:
    file = tmp_path / "proxies.toml"
    file.write_text('[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n')
    proxies = load_config(file, environ={}).trusted_proxies
    assert [str(p) for p in proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
