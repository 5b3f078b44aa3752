import os

# Quiet TensorFlow's start-up chatter and keep tests on the CPU with reproducible kernels.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
