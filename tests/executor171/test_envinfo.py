"""envinfo: shape and order of 0.171.0's environmentInfo (probed), capabilities gating, caching."""
from __future__ import annotations

import json
import os

import pytest

from execrelay.executor import envinfo
from execrelay.executor.errors import RpcError, INVALID_REQUEST

#: key order of the real 0.171.0 ``initialize`` result (tests/executor171/data/envinfo_171.json)
_PROBED = json.loads(open(os.path.join(os.path.dirname(__file__), "data", "envinfo_171.json")).read())


def test_key_order_matches_real_binary() -> None:
    info = envinfo.EnvInfo().info
    assert list(info) == list(_PROBED["environmentInfo"])
    assert list(info["capabilities"]) == list(_PROBED["environmentInfo"]["capabilities"])
    assert list(envinfo.EnvInfo().initialize_result("s")) == list(_PROBED)


def test_capabilities_only_what_is_implemented() -> None:
    caps = envinfo.EnvInfo(implemented={"fsWatchMissing", "fileWriteStreaming"}).info["capabilities"]
    assert {k for k, v in caps.items() if v} == {"fsWatchMissing", "fileWriteStreaming"}
    assert envinfo.EnvInfo(implemented=frozenset()).info["capabilities"] == dict.fromkeys(envinfo.CAPABILITIES, False)
    with pytest.raises(ValueError):
        envinfo.capabilities({"noSuchThing"})


def test_values(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "h o"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    info = envinfo.EnvInfo(environment_id="e1", prepend_path_dirs=(str(tmp_path),)).info
    assert info["cwd"] == "file://" + str(tmp_path)
    assert info["userHomeDir"] == "file://" + str(tmp_path) + "/h%20o"
    assert info["temporaryDirectories"] == ["file://" + str(tmp_path)]
    assert info["tempDir"].startswith("file:///")
    assert info["platformOs"] == "linux"
    assert info["executorVersion"] == "0.171.0"
    assert info["providerId"].startswith("sha256:") and len(info["providerId"]) == 71
    assert info["providerId"] != envinfo.EnvInfo(environment_id="e2").info["providerId"]
    assert info["prependPathDirs"] == ["file://" + str(tmp_path)]
    assert os.path.basename(info["shell"]["path"]).startswith(info["shell"]["name"])


def test_no_tmpdir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMPDIR", raising=False)
    assert envinfo.temporary_directories() == []


def test_cached_once() -> None:
    e = envinfo.EnvInfo()
    assert e.initialize_result("a")["environmentInfo"] is e.info
    assert e.environment_info(True) is e.info


def test_gates() -> None:
    e = envinfo.EnvInfo()
    with pytest.raises(RpcError) as ei:
        e.environment_info(False)
    assert (ei.value.code, ei.value.message) == (INVALID_REQUEST, envinfo.NOT_INITIALIZED_INFO)
    with pytest.raises(RpcError) as ei:
        envinfo.environment_status(False, False)
    assert ei.value.message == envinfo.NOT_INITIALIZED_STATUS
    with pytest.raises(RpcError) as ei:
        envinfo.environment_status(True, False)
    assert ei.value.message == envinfo.NO_INITIALIZED_NOTIFICATION_STATUS
    assert envinfo.environment_status(True, True) == {"status": "ready"}


def test_deleted_cwd_is_null(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert envinfo.EnvInfo().info["cwd"] is None
