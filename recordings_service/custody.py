"""The root key's custody named by the configuration (``[keys] backend``)."""

from __future__ import annotations

from recordings_service.config import Config
from recordings_service.errors import ConfigError
from storage.custody.base import RootKey
from storage.custody.file import FileRootKey


def open_root_key(config: Config) -> RootKey:
    if config.keys_backend == "file":
        return FileRootKey(config.root_key_path)
    try:
        from storage.custody.pkcs11 import Pkcs11RootKey
    except ImportError:
        raise ConfigError("the pkcs11 key backend needs python-pkcs11: "
                          "pip install 'recordings-service[hsm]'") from None
    return Pkcs11RootKey(config.pkcs11_module, config.pkcs11_token_label,
                         config.pkcs11_key_label, config.pkcs11_pin.reveal())
