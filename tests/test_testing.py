"""The pytest plugin, run on small user suites: which brokers run, and what a missing one does."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from celery import Celery

from taskqueue_kit.testing import BrokerTarget, _mask_url, run_worker

pytest_plugins = ["pytester"]

SECRET = "s3cret-pw"
UNREACHABLE = f"amqp://guest:{SECRET}@127.0.0.1:1//"

USER_SUITE = '''
def test_broker(taskqueue_broker):
    """One test on whichever brokers the run selects."""
    assert taskqueue_broker.kind in {"sqlite", "amqp", "redis"}
    assert (taskqueue_broker.broker_url is None) == (taskqueue_broker.kind == "sqlite")
'''

_LINE = re.compile(r"::test_\w+\[(\w+)\] (PASSED|SKIPPED|FAILED|ERROR)")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user suite with one broker test, in an environment naming no broker and no CI."""
    for name in ("CI", "TASKQUEUE_TEST_AMQP_URL", "TASKQUEUE_TEST_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_user=USER_SUITE)
    return pytester


@pytest.fixture
def listening() -> Iterator[str]:
    """``host:port`` of a TCP server: reachable for the plugin, no broker behind it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def _run(suite: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, str]]:
    """Run the suite verbosely; also return each broker's outcome, by test id."""
    result = suite.runpytest("-v", "-rs", *args)
    return result, dict(_LINE.findall(result.stdout.str()))


@pytest.mark.parametrize("ci", [None, "true"])
def test_default_is_sqlite_alone_without_urls(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    """With no option, ini or URL only sqlite runs, and CI does not fail the unasked brokers."""
    if ci:
        monkeypatch.setenv("CI", ci)
    result, ran = _run(suite)
    assert ran == {"sqlite": "PASSED"}
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_given_url_adds_its_broker(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    """A URL from the environment or the command line adds that broker to the default."""
    monkeypatch.setenv("TASKQUEUE_TEST_REDIS_URL", f"redis://{listening}/0")
    result, ran = _run(suite)
    assert ran == {"sqlite": "PASSED", "redis": "PASSED"}

    result, ran = _run(suite, f"--taskqueue-amqp-url=amqp://guest:guest@{listening}//")
    assert ran == {"sqlite": "PASSED", "amqp": "PASSED", "redis": "PASSED"}
    result.assert_outcomes(passed=3)


def test_the_command_line_list_is_exactly_the_brokers_run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    """--taskqueue-brokers picks the brokers; given URLs add none it does not list."""
    monkeypatch.setenv("TASKQUEUE_TEST_AMQP_URL", f"amqp://{listening}//")
    monkeypatch.setenv("TASKQUEUE_TEST_REDIS_URL", f"redis://{listening}/0")
    result, ran = _run(suite, "--taskqueue-brokers=redis")
    assert ran == {"redis": "PASSED"}
    result.assert_outcomes(passed=1)

    result, ran = _run(suite, "--taskqueue-brokers", " Redis, sqlite,redis ")
    assert ran == {"sqlite": "PASSED", "redis": "PASSED"}


def test_the_ini_list_chooses_and_the_command_line_wins(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    """The taskqueue_brokers ini option picks the brokers unless --taskqueue-brokers is given."""
    monkeypatch.setenv("TASKQUEUE_TEST_AMQP_URL", f"amqp://{listening}//")
    monkeypatch.setenv("TASKQUEUE_TEST_REDIS_URL", f"redis://{listening}/0")
    suite.makeini("[pytest]\nfilterwarnings = error\ntaskqueue_brokers = sqlite redis\n")
    _, ran = _run(suite)
    assert ran == {"sqlite": "PASSED", "redis": "PASSED"}

    _, ran = _run(suite, "--taskqueue-brokers=amqp")
    assert ran == {"amqp": "PASSED"}


def test_the_ini_list_in_pyproject(suite: pytest.Pytester, listening: str) -> None:
    """[tool.pytest.ini_options] taskqueue_brokers works as in pytest.ini."""
    (suite.path / "tox.ini").unlink()
    suite.makepyprojecttoml(
        '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\ntaskqueue_brokers = ["amqp"]\n'
    )
    _, ran = _run(suite, f"--taskqueue-amqp-url=amqp://{listening}//")
    assert ran == {"amqp": "PASSED"}


def test_a_listed_broker_without_url_is_skipped_locally(suite: pytest.Pytester) -> None:
    """A broker listed but given no URL is skipped, with the reason saying how to give one."""
    result, ran = _run(suite, "--taskqueue-brokers=sqlite,amqp")
    assert ran == {"sqlite": "PASSED", "amqp": "SKIPPED"}
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["SKIPPED*amqp was asked for but no URL is given (--taskqueue-amqp-url or *_AMQP_URL)"]
    )


def test_a_listed_broker_without_url_fails_under_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under CI a broker listed but given no URL is an error, so the run fails."""
    monkeypatch.setenv("CI", "true")
    suite.makeini("[pytest]\nfilterwarnings = error\ntaskqueue_brokers = sqlite,redis\n")
    result, ran = _run(suite)
    assert ran == {"sqlite": "PASSED", "redis": "ERROR"}
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*redis was asked for but no URL*(CI is set, so a broker asked for may not be skipped)"]
    )


@pytest.mark.parametrize("ci", [None, "1"])
@pytest.mark.parametrize("given", ["env", "option"])
def test_an_unreachable_broker_skips_locally_fails_under_ci_and_hides_its_password(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None, given: str
) -> None:
    """An unreachable URL is a skip locally and an error under CI; the password never shows."""
    if ci:
        monkeypatch.setenv("CI", ci)
    args: list[str] = []
    if given == "env":
        monkeypatch.setenv("TASKQUEUE_TEST_AMQP_URL", UNREACHABLE)
    else:
        args.append(f"--taskqueue-amqp-url={UNREACHABLE}")
    result, ran = _run(suite, *args)
    masked = "amqp broker at amqp://guest:***@127.0.0.1:1// is not reachable"
    if ci:
        assert ran == {"sqlite": "PASSED", "amqp": "ERROR"}
        result.assert_outcomes(passed=1, errors=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([f"*{masked} (CI is set*"])
    else:
        assert ran == {"sqlite": "PASSED", "amqp": "SKIPPED"}
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines([f"SKIPPED*{masked}"])
    result.stdout.fnmatch_lines(["taskqueue-kit brokers: sqlite, amqp (amqp://guest:***@*)"])
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_a_failing_assertion_on_the_target_hides_the_password(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    """BrokerTarget's repr masks passwords, so assertion rewriting cannot print one."""
    monkeypatch.setenv("TASKQUEUE_TEST_REDIS_URL", f"redis://:{SECRET}@{listening}/0")
    suite.makepyfile(
        test_user="""
        def test_broker(taskqueue_broker):
            assert taskqueue_broker == "something else"
        """
    )
    result, ran = _run(suite, "--taskqueue-brokers=redis", "--showlocals")
    assert ran == {"redis": "FAILED"}
    result.stdout.fnmatch_lines(
        [f"*BrokerTarget(kind='redis', broker_url='redis://:***@{listening}/0'*"]
    )
    assert SECRET not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--taskqueue-brokers=sqlite,kafka"], "", "--taskqueue-brokers: unknown broker 'kafka'"),
        (["--taskqueue-brokers="], "", "--taskqueue-brokers names no broker"),
        ([], "taskqueue_brokers = sqlite rabbitmq", "taskqueue_brokers (ini): unknown broker"),
    ],
)
def test_an_unknown_broker_name_is_a_usage_error(
    suite: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    """Unknown or missing broker names stop the run as a usage error listing the valid ones."""
    suite.makeini(f"[pytest]\nfilterwarnings = error\n{ini}\n")
    result = suite.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*; choose from sqlite, amqp, redis"])
    assert "collected" not in result.stdout.str()


def test_a_test_that_parametrises_the_broker_itself_wins(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, listening: str
) -> None:
    """An indirect parametrize of taskqueue_broker replaces the selection for that test."""
    monkeypatch.setenv("TASKQUEUE_TEST_REDIS_URL", f"redis://{listening}/0")
    suite.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.parametrize("taskqueue_broker", ["sqlite"], indirect=True)
        def test_only_sqlite(taskqueue_broker):
            assert taskqueue_broker.kind == "sqlite"

        def test_broker(taskqueue_broker):
            pass
        """
    )
    result = suite.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["*::test_only_sqlite[[]sqlite[]] PASSED*", "*::test_broker[[]sqlite[]] PASSED*"]
    )
    result.assert_outcomes(passed=3)


def test_a_user_fixture_overriding_taskqueue_broker_is_left_alone(suite: pytest.Pytester) -> None:
    """A conftest's own taskqueue_broker, parametrised or not, is not parametrised again."""
    suite.makeconftest(
        """
        import pytest
        from taskqueue_kit.testing import BrokerTarget

        @pytest.fixture(params=["one", "two"])
        def taskqueue_broker(request):
            return BrokerTarget("sqlite", None, None)
        """
    )
    suite.makepyfile(test_user="def test_broker(taskqueue_broker):\n    pass\n")
    result = suite.runpytest("-v", "--taskqueue-brokers=sqlite,redis")
    result.stdout.fnmatch_lines(["*::test_broker[[]one[]] PASSED*", "*::test_broker[[]two[]] *"])
    result.assert_outcomes(passed=2)

    suite.makeconftest(
        """
        import pytest

        @pytest.fixture
        def taskqueue_broker(taskqueue_broker):
            return taskqueue_broker
        """
    )
    result, ran = _run(suite, "--taskqueue-brokers=sqlite,redis")
    assert ran == {"sqlite": "PASSED", "redis": "SKIPPED"}


def test_the_fixtures_run_a_real_worker_on_sqlite(suite: pytest.Pytester) -> None:
    """taskqueue_app and run_worker work end to end on the parametrised sqlite broker."""
    suite.makepyfile(
        test_user="""
        from taskqueue_kit.testing import run_worker

        def test_add(taskqueue_app):
            @taskqueue_app.task(name="add", shared=False)
            def add(x, y):
                return x + y

            with run_worker(taskqueue_app):
                assert add.delay(2, 3).get(timeout=30) == 5
        """
    )
    result = suite.runpytest("-v", "--taskqueue-brokers=sqlite")
    result.stdout.fnmatch_lines(["*::test_add[[]sqlite[]] PASSED*"])
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@host:5672//", "amqp://guest:***@host:5672//"),
        ("redis://:pa@ss@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("amqp://u:a@h1//;amqp://u:b@h2//", "amqp://u:***@h1//;amqp://u:***@h2//"),
        ("redis://u:pw@[::1:6379/0", "***"),
    ],
)
def test_urls_are_shown_with_passwords_masked(url: str, shown: str) -> None:
    """Every password in a broker URL, failover lists included, is shown as ***."""
    assert _mask_url(url) == shown
    assert repr(BrokerTarget("redis", url, url)) == (
        f"BrokerTarget(kind='redis', broker_url={shown!r}, result_backend={shown!r})"
    )


@pytest.mark.compat
def test_each_run_worker_runs_its_own_countdowns(taskqueue_app: Celery) -> None:
    """Workers started one after the other in one process each run their countdown tasks.

    Celery's worker reuses the process's event loop, whose timer belongs to the worker
    that made it; without a fresh loop per worker, the second never ran a countdown.
    """

    @taskqueue_app.task(name="later.echo", shared=False)
    def echo(value: int) -> int:
        return value

    for value in (1, 2):
        with run_worker(taskqueue_app):
            assert echo.apply_async((value,), countdown=0.05).get(timeout=15) == value
