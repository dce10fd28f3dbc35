"""Tests of client configuration (render_core.config).

The environment is always an explicit dict: nothing here reads ``os.environ``.
The rules under test are the module docstring's, i.e. the official client's rules with the
official client's traps fixed (G 9-10).
"""

from __future__ import annotations

import platform
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import render_core
from render_core.config import (
    DEFAULT_BASE_URL,
    DEFAULT_LOCAL_DEV_URL,
    ClientConfig,
    Timeouts,
    is_loopback_host,
    resolve_config,
    user_agent,
)
from render_core.errors import ClientError, ConfigurationError, RenderError

# A token that must never show up in a repr or an error message.
SENTINEL = "rnd_SENTINEL_d0n0tl3ak"


def raises_config_error(**kwargs: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        resolve_config(**kwargs)  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------------------
# Which base URL wins


def test_defaults_to_the_cloud_with_a_token() -> None:
    config = resolve_config(token="tok")
    assert config.base_url == DEFAULT_BASE_URL == "https://api.render.com"
    assert config.api_url == "https://api.render.com/v1"
    assert config.token == "tok"
    assert config.has_token
    assert not config.local_dev


def test_explicit_base_url_wins_over_both_env_variables() -> None:
    env = {"RENDER_LOCAL_DEV_URL": "http://localhost:9999", "RENDER_USE_LOCAL_DEV": "true"}
    config = resolve_config(token="tok", base_url="https://eu.example.com", env=env)
    assert config.base_url == "https://eu.example.com"
    assert not config.local_dev


def test_explicit_remote_base_url_still_needs_a_token_in_local_dev_env() -> None:
    error = raises_config_error(
        base_url="https://eu.example.com", env={"RENDER_USE_LOCAL_DEV": "1"}
    )
    assert "RENDER_API_KEY" in str(error)


def test_local_dev_url_wins_over_use_local_dev() -> None:
    env = {"RENDER_LOCAL_DEV_URL": "http://127.0.0.1:9000/", "RENDER_USE_LOCAL_DEV": "1"}
    config = resolve_config(env=env)
    assert config.base_url == "http://127.0.0.1:9000"
    assert config.local_dev
    assert config.token is None


def test_use_local_dev_gives_the_default_dev_server() -> None:
    config = resolve_config(env={"RENDER_USE_LOCAL_DEV": "true"})
    assert config.base_url == DEFAULT_LOCAL_DEV_URL == "http://localhost:8120"
    assert config.api_url == "http://localhost:8120/v1"
    assert config.local_dev
    assert config.token is None
    assert not config.has_token


def test_blank_local_dev_url_is_unset() -> None:
    config = resolve_config(token="tok", env={"RENDER_LOCAL_DEV_URL": "   "})
    assert config.base_url == DEFAULT_BASE_URL
    assert not config.local_dev


def test_remote_local_dev_url_is_local_dev_mode() -> None:
    config = resolve_config(env={"RENDER_LOCAL_DEV_URL": "https://dev.example.com:8443"})
    assert config.base_url == "https://dev.example.com:8443"
    assert config.local_dev
    assert config.token is None


@pytest.mark.parametrize(
    "value",
    ["1", "t", "T", "true", "TRUE", "True", "y", "Y", "yes", "YES", "on", "On", " true ", "tRuE\n"],
)
def test_truthy_use_local_dev_values(value: str) -> None:
    config = resolve_config(env={"RENDER_USE_LOCAL_DEV": value})
    assert config.base_url == DEFAULT_LOCAL_DEV_URL
    assert config.local_dev


@pytest.mark.parametrize(
    "value", ["", " ", "0", "f", "false", "False", "n", "no", "off", "2", "tru", "truthy", "enable"]
)
def test_falsy_use_local_dev_values(value: str) -> None:
    config = resolve_config(token="tok", env={"RENDER_USE_LOCAL_DEV": value})
    assert config.base_url == DEFAULT_BASE_URL
    assert not config.local_dev
    raises_config_error(env={"RENDER_USE_LOCAL_DEV": value})


# ---------------------------------------------------------------------------
# URL normalisation


@pytest.mark.parametrize(
    ("raw", "base_url"),
    [
        ("localhost:8120", "http://localhost:8120"),
        ("localhost", "http://localhost"),
        ("127.0.0.1:8120", "http://127.0.0.1:8120"),
        ("[::1]:8120", "http://[::1]:8120"),
        ("dev.localhost:3000", "http://dev.localhost:3000"),
        ("api.example.com", "https://api.example.com"),
        ("10.0.0.1:8120", "https://10.0.0.1:8120"),
        ("example.com/prefix", "https://example.com/prefix"),
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com/v1", "https://api.example.com"),
        ("https://api.example.com/v1/", "https://api.example.com"),
        ("https://example.com/prefix/v1/", "https://example.com/prefix"),
        ("https://example.com/prefix//", "https://example.com/prefix"),
        ("https://example.com/v1x", "https://example.com/v1x"),
        ("https://example.com/v1/v1", "https://example.com/v1"),
        ("  https://api.example.com  ", "https://api.example.com"),
        ("HTTPS://api.example.com", "https://api.example.com"),
        ("http://localhost:8120", "http://localhost:8120"),
        ("https://localhost:8120", "https://localhost:8120"),
        ("https://api.example.com:443", "https://api.example.com:443"),
    ],
)
def test_base_url_normalisation(raw: str, base_url: str) -> None:
    config = resolve_config(token="tok", base_url=raw)
    assert config.base_url == base_url
    assert config.api_url == base_url + "/v1"
    # The same rules apply to RENDER_LOCAL_DEV_URL.
    assert resolve_config(env={"RENDER_LOCAL_DEV_URL": raw}).base_url == base_url


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("ftp://example.com", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("ws://localhost:8120", "scheme 'ws'"),
        ("http://", "no host"),
        ("https://:8443", "no host"),
        ("https://api.example.com/?a=1", "query or fragment"),
        ("https://api.example.com/#frag", "query or fragment"),
        ("https://user:pw@api.example.com", "credentials"),
        ("https://user@api.example.com", "credentials"),
        ("https://@api.example.com", "credentials"),
        ("user:pw@api.example.com", "credentials"),
        ("https://api.example.com:99999", "invalid port"),
        ("https://api.example.com:abc", "invalid port"),
        ("http://[::1", "not a valid URL"),
        ("[::1", "not a valid URL"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_bad_urls_are_configuration_errors(raw: str, problem: str) -> None:
    error = raises_config_error(token="tok", base_url=raw)
    assert problem in str(error)
    assert str(error).startswith("base_url ")
    assert error.__cause__ is None
    env_error = raises_config_error(env={"RENDER_LOCAL_DEV_URL": raw}) if raw.strip() else None
    if env_error is not None:
        assert str(env_error).startswith("RENDER_LOCAL_DEV_URL ")


@pytest.mark.parametrize("value", [5, b"https://api.example.com", ["https://x"]])
def test_non_str_base_url(value: object) -> None:
    error = raises_config_error(token="tok", base_url=value)
    assert "base_url must be a str" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        "https://u:SECRETPW@api.example.com/?q=1",
        "https://u:SECRETPW@",
        "https://u:SECRETPW@api.example.com:notaport",
        "ftp://u:SECRETPW@example.com",
    ],
)
def test_url_passwords_never_appear_in_messages(raw: str) -> None:
    assert "SECRETPW" not in str(raises_config_error(token="tok", base_url=raw))


# ---------------------------------------------------------------------------
# Tokens


def test_token_from_env() -> None:
    config = resolve_config(env={"RENDER_API_KEY": "env-tok"})
    assert config.token == "env-tok"
    assert config.base_url == DEFAULT_BASE_URL


def test_explicit_token_wins_over_env() -> None:
    assert resolve_config(token="arg-tok", env={"RENDER_API_KEY": "env-tok"}).token == "arg-tok"


def test_token_is_stripped() -> None:
    assert resolve_config(token="  tok\n").token == "tok"
    assert resolve_config(env={"RENDER_API_KEY": " env-tok "}).token == "env-tok"


def test_local_dev_needs_no_token() -> None:
    for env in ({"RENDER_USE_LOCAL_DEV": "1"}, {"RENDER_LOCAL_DEV_URL": "localhost:8120"}):
        config = resolve_config(env=env)
        assert config.local_dev
        assert config.token is None
    loopback = resolve_config(base_url="http://127.0.0.1:8120")
    assert loopback.local_dev
    assert loopback.token is None


def test_local_dev_keeps_a_token_when_given() -> None:
    config = resolve_config(env={"RENDER_USE_LOCAL_DEV": "1", "RENDER_API_KEY": "tok"})
    assert config.token == "tok"
    assert config.local_dev


@pytest.mark.parametrize(
    "env",
    [{}, {"RENDER_API_KEY": ""}, {"RENDER_API_KEY": "   "}, {"RENDER_USE_LOCAL_DEV": "0"}],
)
def test_missing_token_outside_local_dev(env: dict[str, str]) -> None:
    error = raises_config_error(env=env)
    assert isinstance(error, ClientError)
    assert isinstance(error, ValueError)
    assert isinstance(error, RenderError)
    message = str(error)
    assert "token" in message
    assert "RENDER_API_KEY" in message
    assert "RENDER_USE_LOCAL_DEV" in message  # points at the local-dev way out


@pytest.mark.parametrize("token", ["", "   ", "\t\n"])
def test_whitespace_only_token_is_missing(token: str) -> None:
    raises_config_error(token=token)
    assert resolve_config(token=token, env={"RENDER_USE_LOCAL_DEV": "1"}).token is None


@pytest.mark.parametrize("token", [b"tok", 123, ["tok"]])
def test_non_str_token(token: object) -> None:
    error = raises_config_error(token=token, env={"RENDER_USE_LOCAL_DEV": "1"})
    assert "token must be a str" in str(error)


@pytest.mark.parametrize(
    "base_url",
    ["http://api.example.com", "http://10.0.0.1:8120", "http://192.168.1.5:8120", "http://0.0.0.0"],
)
def test_token_over_plain_http_to_remote_is_refused(base_url: str) -> None:
    error = raises_config_error(token=SENTINEL, base_url=base_url)
    assert "plain http" in str(error)
    assert "allow_insecure_http=True" in str(error)
    assert SENTINEL not in str(error)
    config = resolve_config(token=SENTINEL, base_url=base_url, allow_insecure_http=True)
    assert config.token == SENTINEL
    assert config.base_url == base_url


def test_token_from_env_over_plain_http_local_dev_url_is_refused() -> None:
    env = {"RENDER_LOCAL_DEV_URL": "http://192.168.1.5:8120", "RENDER_API_KEY": SENTINEL}
    error = raises_config_error(env=env)
    assert "192.168.1.5" in str(error)
    # Without a token there is nothing to leak: plain http is fine.
    config = resolve_config(env={"RENDER_LOCAL_DEV_URL": "http://192.168.1.5:8120"})
    assert config.token is None
    assert config.local_dev


@pytest.mark.parametrize(
    "base_url",
    ["http://localhost:8120", "http://127.0.0.5", "http://[::1]:8120", "http://a.localhost"],
)
def test_token_over_plain_http_to_loopback_is_fine(base_url: str) -> None:
    config = resolve_config(token="tok", base_url=base_url)
    assert config.token == "tok"
    assert config.local_dev


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("foo.localhost", True),
        ("a.b.localhost", True),
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("0:0:0:0:0:0:0:1", True),
        ("10.0.0.1", False),
        ("128.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("", False),
        ("[]", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# ---------------------------------------------------------------------------
# The token never leaks


def test_token_is_not_in_repr() -> None:
    config = resolve_config(token=SENTINEL)
    assert SENTINEL not in repr(config)
    assert SENTINEL not in str(config)
    assert "base_url='https://api.render.com'" in repr(config)
    direct = ClientConfig(base_url="https://x.test", token=SENTINEL, user_agent="ua")
    assert SENTINEL not in repr(direct)


TOKEN_SPOTS = st.sampled_from(["arg", "env", "both"])


@settings(max_examples=200, deadline=None)
@given(
    base_url=st.none()
    | st.sampled_from(
        [
            "http://api.example.com",
            "https://api.example.com/v1/",
            "ftp://x",
            "http://[::1",
            "https://h:bad",
            "localhost:8120",
            "10.0.0.1",
            "",
            "https://a@b",
        ]
    )
    | st.text(max_size=30),
    local_url=st.none() | st.sampled_from(["", "http://10.1.1.1", "localhost", "ftp://y"]),
    use_local=st.none() | st.sampled_from(["1", "no", "yes"]),
    where=TOKEN_SPOTS,
    insecure=st.booleans(),
)
def test_resolve_config_invariants(
    base_url: str | None,
    local_url: str | None,
    use_local: str | None,
    where: str,
    insecure: bool,
) -> None:
    env = {}
    if local_url is not None:
        env["RENDER_LOCAL_DEV_URL"] = local_url
    if use_local is not None:
        env["RENDER_USE_LOCAL_DEV"] = use_local
    if where in ("env", "both"):
        env["RENDER_API_KEY"] = SENTINEL
    token = SENTINEL if where in ("arg", "both") else None
    error: ConfigurationError | None = None
    try:
        config = resolve_config(
            token=token, base_url=base_url, env=env, allow_insecure_http=insecure
        )
    except ConfigurationError as exc:
        error = exc
    if error is not None:
        assert SENTINEL not in str(error)
        assert SENTINEL not in repr(error)
        return
    assert SENTINEL not in repr(config)
    assert config.token == SENTINEL
    assert re.match(r"https?://", config.base_url)
    assert not config.base_url.endswith("/")
    assert not config.base_url.endswith("/v1")
    assert config.api_url == config.base_url + "/v1"
    if config.base_url.startswith("http://") and not insecure:
        assert config.local_dev


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_base_url_text_resolves_or_raises_configuration_error(raw: str) -> None:
    try:
        config = resolve_config(token="tok", base_url=raw, allow_insecure_http=True)
    except ConfigurationError:
        return
    assert config.base_url.startswith(("http://", "https://"))


# ---------------------------------------------------------------------------
# User agent

UA_SHAPE = re.compile(
    r"render-sdk-python/(?P<v>[^ ]+) "
    r"\((?P<impl>[^/]+)/(?P<py>[^;]+); (?P<os>[^/]+)/(?P<arch>[^)]+)\)"
)


def test_default_user_agent_shape() -> None:
    agent = user_agent()
    match = UA_SHAPE.fullmatch(agent)
    assert match is not None, agent
    assert match["v"] == render_core.__version__
    assert match["impl"] == sys.implementation.name.lower()
    assert match["py"] == platform.python_version()
    for part in ("impl", "os", "arch"):
        assert match[part] == match[part].lower()


def test_user_agent_with_explicit_parts() -> None:
    agent = user_agent(
        "1.2.3", implementation="CPython", python_version="3.12.3", system="Linux", machine="X86_64"
    )
    assert agent == "render-sdk-python/1.2.3 (cpython/3.12.3; linux/x86_64)"
    assert user_agent(
        "0.6.1", implementation="PyPy", python_version="3.10.14", system="Darwin", machine="arm64"
    ) == ("render-sdk-python/0.6.1 (pypy/3.10.14; darwin/arm64)")


def test_resolved_config_user_agent() -> None:
    assert resolve_config(token="tok").user_agent == user_agent()
    assert resolve_config(token="tok", user_agent_string="custom/1").user_agent == "custom/1"
    assert ClientConfig(base_url="https://x.test").user_agent == user_agent()


def test_client_config_defaults() -> None:
    config = ClientConfig(base_url="http://localhost:8120")
    assert config.token is None
    assert not config.local_dev
    assert not config.has_token
    assert not ClientConfig(base_url="http://x", token="").has_token


def test_empty_explicit_token_falls_back_to_the_environment() -> None:
    config = resolve_config(token="", env={"RENDER_API_KEY": "rnd_from_env"})
    assert config.token == "rnd_from_env"


@pytest.mark.parametrize("token", ["rnd_a\r\nX-Evil: 1", "rnd_a\nb", "rnd\x00"])
def test_token_with_line_breaks_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_config(token=token)
    assert "rnd" not in str(info.value)


def test_a_stream_s_socket_waits_a_little_longer_than_its_idle_timeout() -> None:
    assert Timeouts().stream_read == 65.0  # 60 s idle, 5 s more at most
    assert Timeouts(stream_idle=0.4).stream_read == pytest.approx(0.5)  # a quarter more
    assert Timeouts(stream_idle=20.0).stream_read == 25.0
