"""One rule for settings read from environment variables, and the three places that read them."""

from __future__ import annotations

import pytest

from envconfig import env_bool, env_float, env_int, env_str, env_value, parse_bool


class TestTheRule:
    @pytest.mark.parametrize("raw", [None, "", "   "])
    def test_unset_empty_and_blank_mean_the_default(self, raw):
        environ = {} if raw is None else {"X": raw}
        assert env_str("X", "d", environ=environ) == "d"
        assert env_int("X", 3, environ=environ) == 3
        assert env_float("X", 2.5, environ=environ) == 2.5
        assert env_bool("X", True, environ=environ) is True

    def test_values_are_read_with_blanks_around_them_removed(self):
        environ = {"N": " 5 ", "F": "0.25", "S": "  text "}
        assert env_int("N", 0, environ=environ) == 5
        assert env_float("F", 0.0, environ=environ) == 0.25
        assert env_str("S", environ=environ) == "text"

    @pytest.mark.parametrize(
        ("raw", "value"),
        [("1", True), ("true", True), ("YES", True), ("On", True), ("0", False), ("false", False), ("no", False),
         ("OFF", False)],
    )  # fmt: skip
    def test_clear_yes_and_no_words(self, raw, value):
        assert env_bool("FLAG", not value, environ={"FLAG": raw}) is value

    @pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled", "tru"])
    def test_an_unclear_yes_or_no_is_refused_naming_the_variable(self, raw):
        with pytest.raises(ValueError, match=f"FLAG={raw!r}"):
            env_bool("FLAG", False, environ={"FLAG": raw})
        with pytest.raises(ValueError, match="FLAG"):
            parse_bool("FLAG", raw)

    @pytest.mark.parametrize(("reader", "default"), [(env_int, 1), (env_float, 1.0)])
    def test_a_number_that_does_not_parse_is_refused_naming_the_variable(self, reader, default):
        with pytest.raises(ValueError, match="COUNT='ten'"):
            reader("COUNT", default, environ={"COUNT": "ten"})

    def test_env_value_reads_the_type_of_its_default(self):
        environ = {"B": "yes", "I": "4", "F": "4", "S": "x"}
        assert env_value("B", False, environ=environ) is True
        assert env_value("I", 0, environ=environ) == 4 and isinstance(env_value("I", 0, environ=environ), int)
        assert isinstance(env_value("F", 0.0, environ=environ), float)
        assert env_value("S", "d", environ=environ) == "x"

    def test_it_reads_the_process_environment_by_default(self, monkeypatch):
        monkeypatch.setenv("STARCODER_TEST_ENVCONFIG", "7")
        assert env_int("STARCODER_TEST_ENVCONFIG", 0) == 7


class TestEveryReaderFollowsIt:
    """The loop's settings, the server's limits, the queue's settings and the sandbox's limits read the same way."""

    def test_an_empty_variable_is_unset_everywhere(self, monkeypatch):
        from graph.config import Settings
        from sandbox.limits import SandboxLimits
        from service.limits import ServiceLimits

        for name in (
            "STARCODER_MAX_ITERATIONS",
            "STARCODER_REVIEW_FAILING",
            "STARCODER_MAX_RUNNING",
            "STARCODER_SANDBOX_CPU_S",
            "STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION",
            "STARCODER_AGENTS_HOME",
        ):
            monkeypatch.setenv(name, "")  # fmt: skip
        assert Settings().max_iterations == 3 and Settings().review_failing is False
        assert ServiceLimits().max_running == 2
        assert SandboxLimits().cpu_s == 30 and SandboxLimits().require_full_isolation is True

    def test_the_queue_settings_follow_it(self, monkeypatch):
        from service.jobs import QueueSettings

        monkeypatch.setenv("STARCODER_QUEUE", "")
        monkeypatch.setenv("STARCODER_LEASE_S", " 12.5 ")
        assert QueueSettings().queue == "starcoder-runs" and QueueSettings().lease_s == 12.5
        monkeypatch.setenv("STARCODER_LEASE_S", "long")
        with pytest.raises(ValueError, match="STARCODER_LEASE_S"):
            QueueSettings()

    def test_an_unclear_yes_or_no_is_refused_everywhere(self, monkeypatch):
        from graph.config import Settings
        from sandbox.limits import SandboxLimits

        monkeypatch.setenv("STARCODER_REVIEW_FAILING", "sometimes")
        with pytest.raises(ValueError, match="STARCODER_REVIEW_FAILING"):
            Settings()
        monkeypatch.setenv("STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION", "perhaps")
        with pytest.raises(ValueError, match="STARCODER_SANDBOX_REQUIRE_FULL_ISOLATION"):
            SandboxLimits()

    def test_a_bad_number_is_refused_everywhere(self, monkeypatch):
        from graph.config import Settings
        from service.limits import ServiceLimits

        monkeypatch.setenv("STARCODER_MIN_SCORE", "high")
        with pytest.raises(ValueError, match="STARCODER_MIN_SCORE"):
            Settings()
        monkeypatch.setenv("STARCODER_MAX_QUEUED", "many")
        with pytest.raises(ValueError, match="STARCODER_MAX_QUEUED"):
            ServiceLimits()

    def test_values_are_read_everywhere(self, monkeypatch):
        from graph.config import Settings
        from sandbox.limits import SandboxLimits
        from service.limits import ServiceLimits

        monkeypatch.setenv("STARCODER_MIN_SCORE", "8.5")
        monkeypatch.setenv("STARCODER_ARBITRATE_TESTS", "off")
        monkeypatch.setenv("STARCODER_RATE_BURST", "4")
        monkeypatch.setenv("STARCODER_SANDBOX_TIER", " RLimits ")
        assert Settings().min_score == 8.5 and Settings().arbitrate_tests is False
        assert ServiceLimits().rate_burst == 4
        assert SandboxLimits().tier == "rlimits"
