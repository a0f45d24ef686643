"""MuJoCo meta-RL task families on gymnasium's v5 models (``pip install -e ".[mujoco]"``)."""
