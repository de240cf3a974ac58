"""The launch layer, installed as `nemotron.launchers` (the folder is `launchers/`; see its README).

Imports no torch, megatron or mlflow (tests/test_layering.py checks it in a fresh process).
"""
