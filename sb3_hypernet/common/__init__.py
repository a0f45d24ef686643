"""Machinery shared by every method: the task interface and meta-episodes, the array-stepped VecEnv base, the
recurrent policy with its encoder, heads and generated layers, buffers, callbacks and evaluation.

Method folders (:mod:`sb3_hypernet.meta_ppo`, :mod:`~sb3_hypernet.rnn`, :mod:`~sb3_hypernet.task_inference`,
:mod:`~sb3_hypernet.varibad`, :mod:`~sb3_hypernet.offpolicy`) import from here and from nowhere else in the package.
"""
