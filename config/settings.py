"""Service settings: environment variables (``AUTOPILOT_*``), then a TOML settings file, then defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent
SETTINGS_FILE_ENV = "AUTOPILOT_SETTINGS_FILE"


class Settings(BaseSettings):
    """Everything the service can be told; passed explicitly to whatever needs it."""

    model_config = SettingsConfigDict(env_prefix="AUTOPILOT_", extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where the SQLite file and generated keys live")
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; defaults to an SQLite file in data_dir"
    )
    config_dir: Path = Field(SHIPPED_CONFIG_DIR, description="Playbooks, policies, rules, workflows")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)

    jwt_secret: SecretStr | None = Field(
        None, description="HS256 signing secret; generated into data_dir on first start when unset"
    )
    jwt_algorithms: list[Literal["HS256", "RS256", "ES256"]] = Field(
        ["HS256"], min_length=1, description="Accepted token algorithms; RS256/ES256 need a public key or JWKS"
    )
    jwt_public_key_file: Path | None = Field(None, description="PEM public key for RS256/ES256 tokens")
    jwt_jwks_file: Path | None = Field(None, description="A JWKS file; the token's 'kid' picks the key")
    jwt_audience: str | None = Field(None, description="When set, tokens must carry this 'aud'")
    jwt_issuer: str | None = Field(None, description="When set, tokens must carry this 'iss'")
    jwt_leeway_seconds: float = Field(30, ge=0, le=300, description="Clock skew allowed on exp/iat/nbf")
    token_ttl_hours: float = Field(24.0 * 30, gt=0, description="Lifetime of tokens the CLI mints")

    engine_workers: int = Field(
        32, ge=1, description="Workers for runs queued outside a request: recovered at start-up, or "
        "left active by a stage that acts outside"
    )
    commit_batch_max: int = Field(1000, ge=1, description="Transitions grouped into one commit")
    scheduler_enabled: bool = Field(
        True, description="Fire schedules on time; when off, schedules are kept and listed but fire only by hand"
    )

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'autopilot.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(SETTINGS_FILE_ENV, "autopilot.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )
