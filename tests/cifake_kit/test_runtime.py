import os
import platform

from cifake_kit.runtime import VERBOSE_ENV, configure_console, keep_freed_memory, verbose


def test_allocator_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("CIFAKE_MALLOC_TUNING", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("CIFAKE_MALLOC_TUNING")
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True


def _clean(monkeypatch):
    for name in (VERBOSE_ENV, "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_quiet_console_silences_the_libraries_bars_but_not_what_the_user_set(monkeypatch):
    _clean(monkeypatch)
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "0")  # the user's own choice
    configure_console(verbose=False)
    assert not verbose()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "0"
    assert "TRANSFORMERS_VERBOSITY" not in os.environ


def test_verbose_console_lets_the_libraries_speak(monkeypatch):
    _clean(monkeypatch)
    configure_console(verbose=True)
    assert verbose()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
