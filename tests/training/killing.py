"""Simulated kills for resume tests: a step callback that raises at a chosen global step."""


class Killed(Exception):
    """Stands for the process being killed: raised inside training, no final files."""


def kill_after(step_to_die):
    def callback(step):
        if step == step_to_die:
            raise Killed

    return callback
