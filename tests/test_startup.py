"""The quiet TensorFlow start-up: stderr held while a module is imported, native TFLite lines."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.child_process import REPOSITORY, child_environment
from vertseg_tf import startup
from vertseg_tf.startup import _QuietImportFinder, held_stderr, quiet_native_logs


def test_held_stderr_drops_c_level_output_and_replays_it_on_failure(capfd):
    with held_stderr():
        os.write(2, b"C-level noise\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError), held_stderr():
        os.write(2, b"why it broke\n")
        raise RuntimeError("broken")
    assert capfd.readouterr().err == "why it broke\n"


def test_the_import_hook_holds_stderr_only_while_its_module_is_imported(
    tmp_path, monkeypatch, capfd
):
    (tmp_path / "noisy_module.py").write_text("import os\nos.write(2, b'start-up noise\\n')\n")
    (tmp_path / "broken_module.py").write_text(
        "import os\nos.write(2, b'missing library\\n')\nraise ImportError('broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = _QuietImportFinder(("noisy_module", "broken_module"))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    for name in ("noisy_module", "broken_module"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import noisy_module

    assert type(noisy_module.__loader__).__name__ == "SourceFileLoader"
    os.write(2, b"ours\n")
    with pytest.raises(ImportError, match="broken"):
        import broken_module  # noqa: F401
    assert capfd.readouterr().err == "ours\nmissing library\n"


@pytest.mark.slow
def test_tensorflow_start_up_prints_nothing_after_quiet_start():
    code = textwrap.dedent(
        """
        import sys
        from vertseg_tf.startup import quiet_tensorflow_startup
        quiet_tensorflow_startup()
        print("first", file=sys.stderr, flush=True)
        import keras
        import numpy as np
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(loss="mse")
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)
        print("last", file=sys.stderr, flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, timeout=300,
                            env=child_environment(keep_tf_logs=False), capture_output=True,
                            text=True, check=True)
    assert result.stderr.splitlines() == ["first", "last"]




def test_native_logs_are_held_only_after_the_quiet_start_up(monkeypatch, capfd):
    monkeypatch.setitem(startup._state, "quiet", False)
    with quiet_native_logs():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert capfd.readouterr().err.startswith("INFO: Created")
    monkeypatch.setitem(startup._state, "quiet", True)
    with quiet_native_logs():
        os.write(2, b"fully_quantize: 0, inference_type: 6\n")
    assert capfd.readouterr().err == ""
