"""Model files are data, never code: a Lambda layer or a pickled array is refused."""

import hashlib
import json

import numpy as np
import pytest

from vertseg_tf.asm.persistence import load_model, save_model
from vertseg_tf.errors import DataError
from vertseg_tf.models_io import load_keras_model


def test_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(DataError) as error:
        load_keras_model(tmp_path / "lambda.keras")
    assert error.value.file == str(tmp_path / "lambda.keras")


def test_asm_arrays_holding_a_pickled_object_are_refused(tmp_path):
    json_path = save_model(tmp_path / "model.json", "asm-g", {}, {}, {"mean": np.zeros(3)})
    npz_path = tmp_path / "model.npz"
    np.savez(npz_path, mean=np.array([{"not": "data"}], dtype=object))
    document = json.loads(json_path.read_text())
    document["arrays_sha256"] = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    json_path.write_text(json.dumps(document))
    with pytest.raises(DataError) as error:
        load_model(json_path)
    assert error.value.file == str(npz_path) and "not a valid arrays file" in error.value.problem
