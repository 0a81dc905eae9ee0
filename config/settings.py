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
    executor_lease_seconds: float = Field(
        10.0, gt=0, le=3600, description="A process whose heartbeat is older than this is dead, and another "
        "process takes over its runs: with the heartbeat below, within lease + heartbeat seconds of its death"
    )
    executor_heartbeat_seconds: float = Field(
        2.5, gt=0, le=600, description="How often a process records that it is alive and looks for runs to "
        "take over; keep it well under the lease"
    )
    scheduler_enabled: bool = Field(
        True, description="Fire schedules on time; when off, schedules are kept and listed but fire only by hand"
    )
    scheduler_leader_retry_seconds: float = Field(
        3.0, gt=0, le=60, description="How often a process that does not lead the scheduler tries to, and the "
        "leader checks it still does (PostgreSQL): a dead leader is replaced within about this long"
    )
    scheduler_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="How often the scheduler's leader looks for schedules changed through "
        "other processes, and for fires running elsewhere (PostgreSQL)"
    )

    sse_heartbeat_seconds: float = Field(15.0, gt=0, description="A ': heartbeat' comment on an idle stream this often")
    sse_retry_ms: int = Field(3000, ge=0, description="The 'retry:' hint: how long EventSource waits to reconnect")
    sse_queue_max: int = Field(
        10000, ge=1, description="Events a stream's inbox holds; past that the stream catches up from the log"
    )
    sse_catchup_max: int = Field(
        50000, ge=1, description="Events one catch-up may read; a client further behind gets 'stream.overflow' "
        "and the stream ends"
    )
    sse_send_buffer_bytes: int = Field(
        262144, ge=0, description="The kernel send buffer of each stream's socket (0: the system's, which can "
        "grow to megabytes), so a client that stops reading is noticed and holds little memory"
    )
    sse_flush_seconds: float = Field(
        0.02, ge=0, description="A stream gathers the events arriving this long after a write into its next write"
    )
    sse_write_timeout_seconds: float = Field(
        30.0, gt=0, description="A client that takes in nothing for this long is disconnected"
    )
    sse_log_readers: int = Field(
        2, ge=1, description="Streams reading the log (replay, catch-up) at once, so they never hold the "
        "connections the pipeline writes with"
    )
    event_channel: str = Field(
        "autopilot_events", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL: the NOTIFY channel on "
        "which processes announce their commits to each other; each deployment sharing a database needs its own"
    )
    event_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="PostgreSQL: each process reads the event log at least this often, so a "
        "lost notification only delays live events"
    )

    llm_base_url: str | None = Field(
        None, description="An OpenAI-compatible endpoint (e.g. https://api.openai.com/v1); unset: no copilot, "
        "triage on rules only"
    )
    llm_api_key: SecretStr | None = Field(None, description="The endpoint's API key, if it needs one")
    llm_model: str | None = Field(None, description="The model name the endpoint serves")
    llm_timeout_seconds: float = Field(30.0, gt=0, description="One model call may take this long")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a model call answered 429, 5xx or "
                                 "not at all")
    llm_retry_backoff_seconds: float = Field(0.5, ge=0, description="The first retry's wait; doubles each time")
    copilot_max_iterations: int = Field(6, ge=1, le=50, description="Model turns that may call tools in one answer")
    copilot_tool_output_chars: int = Field(6000, ge=200, description="A tool's output is cut to this many characters")
    copilot_thread_turns: int = Field(10, ge=0, description="Earlier questions (with their tool calls) of a thread "
                                      "the model sees")
    triage_llm_enabled: bool = Field(False, description="Ask the model when triage's rules are weak")
    triage_llm_below_confidence: float = Field(
        0.6, ge=0, le=1, description="Rules' confidence under which triage asks the model"
    )

    delivery_enabled: bool = Field(True, description="Send webhook deliveries from this process")
    delivery_timeout_seconds: float = Field(10.0, gt=0, le=120, description="One delivery attempt may take this long")
    delivery_max_in_flight: int = Field(64, ge=1, le=10000, description="Deliveries sent at once by one process")
    delivery_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="Look for due deliveries at least this often (retries, other processes' commits)"
    )
    delivery_retry_first_seconds: float = Field(
        5.0, gt=0, description="The first retry's wait; it doubles with each failure (with jitter), up to an hour"
    )
    delivery_retry_seconds: float = Field(
        86400.0, gt=0, description="How long a failing delivery is retried before it is dead-lettered"
    )
    delivery_disable_after: int = Field(
        50, ge=1, description="An endpoint is disabled after this many failed deliveries in a row"
    )
    delivery_allowed_addresses: list[str] = Field(
        default_factory=list, description="Addresses or networks deliveries may reach although they are not public "
        "(loopback, private, link-local), e.g. 127.0.0.1/32"
    )
    public_url: str | None = Field(
        None, description="Where people reach the dashboard (e.g. https://autopilot.example.com): links in messages"
    )

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @property
    def llm_missing(self) -> list[str]:
        """The settings the model endpoint still needs, by their environment names."""
        return [f"AUTOPILOT_{name.upper()}" for name in ("llm_base_url", "llm_model") if not getattr(self, name)]

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
